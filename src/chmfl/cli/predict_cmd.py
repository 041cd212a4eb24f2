"""``chmfl predict``: DM probability and tumour mask for new patients from a saved model."""

from __future__ import annotations

import argparse

from chmfl.errors import ChmflError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("predict", help="predict new patients with a model from 'chmfl train' (no contour needed)")
    p.add_argument("--model", required=True, help="model folder written by 'chmfl train' (OUT/model)")
    p.add_argument("--pet", help="PET: DICOM series folder or NIfTI/NRRD (SUV)")
    p.add_argument("--ct", help="CT: DICOM series folder or NIfTI/NRRD (HU)")
    p.add_argument("--cohort", help="a cohort folder (any layout 'chmfl data prepare' reads) instead of --pet/--ct")
    p.add_argument("--rtstruct", help="RTSTRUCT with the tumour contour (optional)")
    p.add_argument("--roi", help="ROI name or regex in the RTSTRUCT")
    p.add_argument("--center", help="box centre X,Y,Z in patient coordinates (mm, LPS)")
    p.add_argument("--patient-id", help="ID to report (default: from the DICOM or the file name)")
    p.add_argument("--out", required=True)
    p.set_defaults(func=run)


def _center(text: str | None):
    if text is None:
        return None
    try:
        xyz = tuple(float(v) for v in text.split(","))
    except ValueError:
        xyz = ()
    if len(xyz) != 3:
        raise ChmflError(f"--center takes X,Y,Z in mm, got {text!r}")
    return xyz


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from chmfl.predict.predict import PatientInput, predict_patients

    if args.rtstruct and args.center:
        raise ChmflError("give either --rtstruct or --center, not both")
    if args.cohort:
        if args.pet or args.ct:
            raise ChmflError("give either --cohort or --pet/--ct")
        from chmfl.cohort.layouts import find_cases

        patients = [PatientInput(c.patient_id, c.ct, c.pet) for c in find_cases(args.cohort)]
    else:
        if not (args.pet and args.ct):
            raise ChmflError("give --pet and --ct (or --cohort)")
        for flag, path in (("--pet", args.pet), ("--ct", args.ct), ("--rtstruct", args.rtstruct)):
            if path and not Path(path).exists():
                raise ChmflError(f"{flag} {path}: no such file or folder")
        patients = [PatientInput(args.patient_id, Path(args.ct), Path(args.pet),
                                 Path(args.rtstruct) if args.rtstruct else None, args.roi, _center(args.center))]
    out = predict_patients(args.model, patients, args.out)
    print(f"prediction: {out}")
    return 0
