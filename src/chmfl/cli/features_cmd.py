"""``chmfl features``: full-contour IBSI features of a cohort (long CSV + its parameter file)."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("features", help="IBSI handcrafted features of PET and CT in the whole tumour contour (long CSV)")
    p.add_argument("source", help="cohort folder (IBSI, TCIA DICOM or nnU-Net layout; detected)")
    p.add_argument("--clinical", help="INFOclinical_STS.xlsx or a CSV with patient_id,dm columns "
                   "(default: the cohort's labels.csv if any, else none: every patient with a contour, unlabelled)")
    p.add_argument("--out", required=True, help="FEATURES.csv (patient_id, modality, feature, value); "
                   "FEATURES.params.yaml is written beside it")
    p.add_argument("--params", help="parameter file (default: the IBSI validation configuration, "
                   "chmfl/radiomics/params_contour.yaml)")
    p.add_argument("--voxel-mm", default=None,
                   help="'native' (each image's own grid, no interpolation) or an isotropic voxel size in mm "
                        "for both images (default: the parameter file's: CT 1 mm, PET 3 mm)")
    p.add_argument("--workers", type=int, default=1, help="parallel worker processes")
    p.add_argument("--cache", help="per-patient cache folder (default: features_cache/ beside --out)")
    p.add_argument("--layout", choices=("ibsi", "tcia", "nnunet"), help="skip layout detection (default: detected)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from chmfl.radiomics.features_run import compute_features, params_file_path

    result = compute_features(args.source, args.out, args.clinical, args.params, args.voxel_mm,
                              workers=args.workers, cache=args.cache, layout=args.layout)
    n = result.table["patient_id"].nunique()
    print(f"{n} patients, {len(result.table)} values: {len(result.computed)} computed, {len(result.reused)} "
          f"reused in {result.seconds:.1f} s -> {result.out} (+ {params_file_path(result.out).name}, "
          f"params {result.params_hash})")
    return 0
