"""``chmfl convert``: one DICOM series (PET to SUV) or image file to NIfTI/NRRD, plus an
optional RTSTRUCT mask on the same grid. Nothing is written when it fails."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "convert",
        help="convert one DICOM series (PET to SUV) or image file, with an optional RTSTRUCT mask",
        description="Convert one DICOM series folder (CT to HU, PET to SUV) or image file to "
        "NIfTI/NRRD/MHA; with --rtstruct also write the ROI mask on the same grid.",
    )
    p.add_argument("series_dir", metavar="SERIES_DIR", help="DICOM series folder (or an image file)")
    p.add_argument("out", metavar="OUT.nii.gz", help="output image (.nii.gz, .nii, .nrrd, .mha)")
    p.add_argument("--rtstruct", metavar="RS.dcm", help="RTSTRUCT file whose ROI becomes the mask (optional: no mask without it)")
    p.add_argument("--roi", metavar="REGEX", help="ROI name or regex (default: first ROI containing GTV)")
    p.add_argument("--mask-out", metavar="MASK.nii.gz", help="mask output (default: OUT_mask.nii.gz)")
    p.add_argument("--suv", choices=("bw", "lbm", "bsa", "ibw"), default="bw",
                   help="SUV normalisation for PET (lbm = James 1976)")
    g = p.add_argument_group("PET overrides (optional: replace or supply header values; default: the header's)")
    g.add_argument("--weight-kg", type=float, help="patient weight in kg (default: the header's)")
    g.add_argument("--dose-bq", type=float, help="injected dose in Bq (default: the header's)")
    g.add_argument("--injection-time", metavar="ISO", help="injection datetime, e.g. 2020-01-31T09:15:00 (default: the header's)")
    g.add_argument("--half-life-s", type=float, help="radionuclide half-life in s (default: the header's)")
    g.add_argument("--height-m", type=float, help="patient height in m, for SUV lbm/bsa/ibw (default: the header's)")
    g.add_argument("--sex", choices=("M", "F", "O"), help="patient sex, for SUV lbm/ibw (default: the header's)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from chmfl.io.convert import convert_series

    keys = ("weight_kg", "dose_bq", "injection_time", "half_life_s", "height_m", "sex")
    overrides = {k: getattr(args, k) for k in keys if getattr(args, k) is not None}
    result = convert_series(
        args.series_dir, args.out, rtstruct=args.rtstruct, roi=args.roi, mask_out=args.mask_out,
        suv=args.suv, overrides=overrides,
    )
    z, y, x = result.shape
    print(f"wrote {result.image} ({result.modality or 'image'} {result.units}, {z}x{y}x{x} voxels, "
          f"spacing {', '.join(f'{s:.3g}' for s in result.spacing)} mm)")
    if result.mask is not None:
        print(f"wrote {result.mask} (ROI {result.roi_name!r}, {result.mask_ml:.1f} mL)")
    return 0
