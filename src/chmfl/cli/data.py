"""``chmfl data prepare | fetch | bundle``: the cohort cache, the public data, the demo copy."""

from __future__ import annotations

import argparse
from pathlib import Path

from chmfl.cli.args import positive_int, show_progress


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("data", help="prepare a cohort cache, fetch the public STS data, build the demo bundle")
    data = p.add_subparsers(dest="data_command", metavar="ACTION", required=True)

    q = data.add_parser("prepare", help="preprocess a cohort folder into a cache (one file per patient)")
    q.add_argument("source", help="cohort folder (IBSI, TCIA DICOM, nnU-Net or 2D slices layout; detected)")
    q.add_argument("--out", required=True, help="cache folder (CACHE/manifest.csv, CACHE/<hash>/<pid>.npz)")
    q.add_argument("--clinical", help="INFOclinical_STS.xlsx or a CSV with patient_id (or id) and dm (or label) columns "
                   "(default: the cohort's labels.csv if any, else none: every patient unlabelled)")
    q.add_argument("--voxel-mm", type=float, default=1.0, help="isotropic voxel size (paper: 1 mm; 2 or 4 for CPU work)")
    q.add_argument("--workers", type=positive_int, default=1, help="parallel worker processes")
    q.add_argument("--executor", choices=("local", "ray"), default="local",
                   help="where the per-patient work runs: local processes (--workers) or a Ray cluster "
                        "(one task per patient; pip install 'chmfl[cluster]')")
    q.add_argument("--address", help="the Ray cluster (default: RAY_ADDRESS or a local cluster for this run)")
    q.add_argument("--intensity", choices=("paper", "window", "zscore"), default="paper",
                   help="network-input intensities (default: the paper's standardisation + contrast normalisation)")
    q.add_argument("--mask-from", choices=("ct", "pet"), default="ct", help="tumour contour: GTV_Mass_CT or _PET")
    q.add_argument("--roi", help="RTSTRUCT ROI name when a structure set holds several (default: chosen by rule, docs/io.md)")
    q.add_argument("--center", choices=("auto", "mask", "hotspot"), default="auto",
                   help="box centre: mask centroid when there is a contour (auto), or the PET hotspot")
    q.add_argument("--pad", choices=("edge", "constant"), default="edge",
                   help="outside the image: repeat the edge or CT -1000 HU / PET 0")
    q.add_argument("--dtype", choices=("float32", "float16"), default="float32", help="cached voxel type")
    q.add_argument("--layout", choices=("ibsi", "tcia", "nnunet", "slices"), help="skip layout detection (default: detected)")
    q.add_argument("--horizon-days", type=float,
                   help="slices layout: DM label at this horizon from the CSV's event/time columns; "
                        "non-events followed less are excluded (hn_cnn: 730; default: the CSV's label)")
    q.add_argument("--window-hu", default="-50,300",
                   help="slices layout: the HU window a PNG's grey levels span (hn_cnn's)")
    q.add_argument("--png-pixel-mm", type=float, default=1.0,
                   help="slices layout: PNG pixel size in mm (PNG carries none; hn_cnn's: 1)")
    q.add_argument("--skip-bad", action="store_true",
                   help="list a failing patient as excluded and go on (without it: stop, write nothing)")
    q.add_argument("--no-progress", action="store_true", help="no progress bar (none either when stderr is not a terminal)")
    q.add_argument("--features-params", help="parameter file of the full-contour feature table CACHE/features.csv "
                   "(default: the IBSI validation configuration; see 'chmfl features')")
    q.add_argument("--no-features", action="store_true",
                   help="skip the full-contour feature table (hc-rf, mor-3dcnn, 3dmcl, suvmax-volume then use the box)")
    q.set_defaults(func=run_prepare)

    f = data.add_parser("fetch", help="get the public STS cohort and clinical sheet (checksums verified)")
    f.add_argument("dataset", choices=("sts",), help="the data set")
    f.add_argument("--to", required=True, help="destination folder")
    f.add_argument("--from", dest="local", help="local copy (folder or archive) instead of the network (default: download)")
    f.set_defaults(func=run_fetch)

    b = data.add_parser("bundle", help="write the compact 4 mm demo copy of the cohort (package data)")
    b.add_argument("--source", required=True, help="the STS cohort folder (IBSI layout)")
    b.add_argument("--clinical", required=True, help="INFOclinical_STS.xlsx")
    b.add_argument("--out", required=True, help="e.g. src/chmfl/demo_data")
    b.add_argument("--workers", type=positive_int, default=1, help="parallel worker processes")
    b.add_argument("--no-progress", action="store_true", help="no progress bar (none either when stderr is not a terminal)")
    b.add_argument("--features-cache", help="per-patient cache of the feature table (default: a temporary folder)")
    b.set_defaults(func=run_bundle)


def _summary(result) -> str:
    df = result.manifest
    n_dm, n_no = int((df["dm"] == 1).sum()), int((df["dm"] == 0).sum())
    return (f"{len(df)} patients: {n_dm} DM, {n_no} no DM, {len(df) - n_dm - n_no} excluded; "
            f"{len(result.computed)} prepared, {len(result.reused)} reused, {len(result.failed)} failed "
            f"in {result.seconds:.1f} s -> {result.cache_dir}")


def _prepare_slices(args: argparse.Namespace):
    from chmfl.errors import ChmflError
    from chmfl.preprocess.slices import SliceConfig, prepare_slice_cohort

    try:
        lo, hi = (float(v) for v in args.window_hu.split(","))
    except ValueError:
        raise ChmflError(f"--window-hu takes LO,HI in HU, got {args.window_hu!r}") from None
    config = SliceConfig(window_hu=(lo, hi), png_pixel_mm=args.png_pixel_mm, dtype=args.dtype)
    return prepare_slice_cohort(args.source, args.out, args.clinical, config, args.horizon_days)


def run_prepare(args: argparse.Namespace) -> int:
    from chmfl.cohort.layouts import detect_layout
    from chmfl.errors import ChmflError
    from chmfl.preprocess.config import IntensityConfig, PrepareConfig
    from chmfl.preprocess.prepare import prepare_cohort

    if (args.layout or detect_layout(args.source)) == "slices":
        result = _prepare_slices(args)
        print(_summary(result))
        return 0
    if args.horizon_days is not None:
        raise ChmflError("--horizon-days is for the slices layout only")

    config = PrepareConfig(
        voxel_mm=args.voxel_mm, mask_from=args.mask_from, roi=args.roi, center=args.center,
        pad=args.pad, dtype=args.dtype, intensity=IntensityConfig(mode=args.intensity),
    )
    result = prepare_cohort(args.source, args.out, args.clinical, config, workers=args.workers,
                            skip_bad=args.skip_bad, layout=args.layout, progress=show_progress(args.no_progress),
                            executor=args.executor, address=args.address)
    print(_summary(result))
    for pid, err in result.failed.items():
        print(f"skipped {pid}: {err}")
    if not args.no_features:
        _features(args.source, result, args.clinical, args.features_params, args.workers, args.layout,
                  Path(args.out) / "features_cache")
    return 0


def _features(source, result, clinical, params, workers: int, layout, cache: Path, names_only: bool = False) -> None:
    """The full-contour table of the prepared patients that have a contour, into CACHE/features.csv
    (``names_only``: record the source and clinical file by name, not path, as the bundle does)."""
    from chmfl.data.features import FEATURES_FILE
    from chmfl.radiomics.features_run import compute_features

    df = result.manifest
    have = df[df["path"].notna() & df["mask_volume_ml"].notna()]["patient_id"].astype(str).tolist()
    res = compute_features(source, result.cache_dir / FEATURES_FILE, clinical, params, workers=workers,
                           cache=cache, layout=layout, patients=have)
    if names_only:
        from chmfl.radiomics.features_run import strip_paths

        strip_paths(res.out)
    print(f"features: {len(have)} patients, {len(res.computed)} computed, {len(res.reused)} reused in "
          f"{res.seconds:.1f} s -> {res.out} (params {res.params_hash})")


def run_fetch(args: argparse.Namespace) -> int:
    from chmfl.cohort.fetch import fetch

    paths = fetch(args.dataset, args.to, args.local)
    print(f"images: {paths['images']}\nclinical: {paths['clinical']}")
    return 0


def run_bundle(args: argparse.Namespace) -> int:
    from chmfl.preprocess.bundle import make_bundle

    result = make_bundle(args.source, args.clinical, args.out, workers=args.workers,
                         progress=show_progress(args.no_progress))
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        cache = Path(args.features_cache) if args.features_cache else Path(tmp)
        _features(args.source, result, args.clinical, None, args.workers, "ibsi", cache, names_only=True)
    size = sum(p.stat().st_size for p in result.cache_dir.rglob("*") if p.is_file())
    print(f"{_summary(result)} ({size / 1e6:.1f} MB)")
    return 0
