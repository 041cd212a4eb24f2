"""``chmfl predict``: DM probability and tumour mask for new patients from a saved model."""

from __future__ import annotations

import argparse

from chmfl.errors import ChmflError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("predict", help="predict new patients with a model from 'chmfl train' (no contour needed)")
    p.add_argument("--model", required=True, help="model folder written by 'chmfl train' (OUT/model, or OUT itself)")
    p.add_argument("--pet", help="PET: DICOM series folder or NIfTI/NRRD in SUV (with --ct, instead of --cohort); "
                   "not for CT-only slice models")
    p.add_argument("--ct", help="CT: DICOM series folder or NIfTI/NRRD in HU (with --pet, instead of --cohort), "
                   "or one 2D slice (PNG/NIfTI) for a slice model")
    p.add_argument("--cohort", help="a cohort folder (any layout 'chmfl data prepare' reads) instead of --pet/--ct")
    p.add_argument("--rtstruct", help="RTSTRUCT with the tumour contour (optional: the box is placed on the PET hotspot without one)")
    p.add_argument("--roi", help="ROI name or regex in the RTSTRUCT (default: chosen by rule, docs/io.md)")
    p.add_argument("--mask", help="tumour label image (NIfTI/NRRD) instead of an RTSTRUCT (optional)")
    p.add_argument("--center", nargs="+", metavar="X Y Z",
                   help="box centre in patient coordinates (LPS, mm): X Y Z or X,Y,Z (optional, instead of a contour)")
    p.add_argument("--search-box", nargs=6, type=float, metavar=("XMIN", "XMAX", "YMIN", "YMAX", "ZMIN", "ZMAX"),
                   help="look for the tumour only inside this region (LPS, mm) when no contour or centre is given "
                        "(default: wherever PET and CT both exist)")
    p.add_argument("--patient-id", help="ID to report (default: from the DICOM or the file name)")
    p.add_argument("--out", required=True, help="output folder (prediction.json, mask.nii.gz, mask_seg.dcm)")
    p.set_defaults(func=run)


def _center(values: list[str] | None):
    """``--center X Y Z`` or ``--center X,Y,Z`` -> (x, y, z) mm."""
    if values is None:
        return None
    text = " ".join(values)
    try:
        xyz = tuple(float(v) for v in text.replace(",", " ").split())
    except ValueError:
        xyz = ()
    if len(xyz) != 3:
        raise ChmflError(f"--center takes X Y Z in mm (LPS), got {text!r}")
    return xyz


def _cohort_input(case):
    """A cohort patient for prediction; its contour is passed along but used only by methods
    that need one (the box is otherwise placed from the images)."""
    from chmfl.predict.predict import PatientInput

    src = case.mask_for("ct")
    rtstruct = src.path if src is not None and src.kind == "rtstruct" else None
    label = src.path if src is not None and src.kind == "labelmap" else None
    roi = src.roi if src is not None else None
    return PatientInput(case.patient_id, case.ct, case.pet, rtstruct, roi, None, label, contour_if_needed=True,
                        labels=(f"patient {case.patient_id}: CT", f"patient {case.patient_id}: PET"))


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from chmfl.predict.predict import PatientInput, predict_patients

    if sum(bool(x) for x in (args.rtstruct, args.mask, args.center, args.search_box)) > 1:
        raise ChmflError("give at most one of --rtstruct, --mask, --center and --search-box")
    if args.cohort:
        if args.pet or args.ct:
            raise ChmflError("give either --cohort or --pet/--ct")
        if args.center or args.search_box:
            raise ChmflError("--center and --search-box are for one patient (--pet/--ct), not --cohort")
        from chmfl.cohort.layouts import find_cases

        patients = [_cohort_input(c) for c in find_cases(args.cohort)]
    else:
        if not args.ct:
            raise ChmflError("give --ct (and --pet for PET-CT models), or --cohort")
        for flag, path in (("--pet", args.pet), ("--ct", args.ct), ("--rtstruct", args.rtstruct),
                           ("--mask", args.mask)):
            if path and not Path(path).exists():
                raise ChmflError(f"{flag} {path}: no such file or folder")
        patients = [PatientInput(args.patient_id, Path(args.ct), Path(args.pet) if args.pet else None,
                                 Path(args.rtstruct) if args.rtstruct else None, args.roi, _center(args.center),
                                 Path(args.mask) if args.mask else None,
                                 search_box=tuple(args.search_box) if args.search_box else None)]
    out = predict_patients(args.model, patients, args.out)
    print(f"prediction: {out}")
    return 0
