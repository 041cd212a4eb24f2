"""Tumour localisation without a contour, before (the PET hotspot of ``preprocess.box``) and
after (``preprocess.localise.locate_tumour``), on the 51 cropped STS studies and on
whole-body-like studies built around them (``chmfl.synth.wholebody``).

Settings: ``crop`` (the IBSI release as it is), ``body`` (whole-body PET and CT), ``crop-ct``
(whole-body PET with the IBSI crop as the CT: issue 20's failure), ``legs`` (whole-body
PET, CT of the legs only: trunk and arm tumours lie outside the CT). Each study: the centre
error to the CT contour's centroid, the share of the contour inside the 144x112x112 mm box,
and for refusals whether the tumour is among the candidates the message lists.

    python benchmarks/bench_localise.py [--source DIR] [--clinical XLSX] [--settings crop body crop-ct legs]
        [--patients STS_001 ...] [--dicom] [--out benchmarks/results/localise]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine, write  # noqa: E402

SOURCE = "/tmp/chmfl-test-data/sts-petct"
CLINICAL = "/work/shared/data/sts-clinical/INFOclinical_STS.xlsx"
SETTINGS = {"crop": None, "body": "body", "crop-ct": "crop", "legs": "legs"}
LISTED = 5  # candidates a refusal message names


def load_patient(folder: Path):
    from chmfl.io.imageio import read_image
    from chmfl.io.rtstruct import read_rtstruct_mask
    from chmfl.preprocess.geometry import mask_points

    ct, pet = read_image(folder / "CT" / "image"), read_image(folder / "PET" / "image")
    points = mask_points(read_rtstruct_mask(folder / "CT" / "mask" / "RS.dcm", ct))
    return ct, pet, points


def hotspot_before(pet, sigma_mm: float = 4.0, threshold_suv: float = 2.5, fraction: float = 0.4) -> np.ndarray:
    """The no-contour rule before issue 20 (``preprocess.box.pet_hotspot`` until then, kept
    here as the baseline): the 26-connected region of smoothed SUV >= threshold with the largest
    excess uptake over the whole PET, its SUV-weighted centroid (LPS mm)."""
    from scipy import ndimage

    suv = np.nan_to_num(np.asarray(pet.array, dtype=np.float32), nan=0.0)
    smooth = ndimage.gaussian_filter(suv, sigma=[sigma_mm / s for s in pet.spacing], mode="nearest")
    labels, n = ndimage.label(smooth >= threshold_suv, structure=np.ones((3, 3, 3)))
    if n:
        excess = ndimage.sum(smooth - threshold_suv, labels, index=np.arange(1, n + 1))
        region = labels == 1 + int(np.argmax(excess))
    else:
        peak = np.unravel_index(int(np.argmax(smooth)), smooth.shape)
        labels, _ = ndimage.label(smooth >= fraction * smooth[peak], structure=np.ones((3, 3, 3)))
        region = labels == labels[peak]
    w = np.clip(suv[region], 0, None) + 1e-6
    return pet.index_to_physical((np.argwhere(region) * w[:, None]).sum(axis=0) / w.sum())


def _box_fraction(centre, points, config) -> float:
    from chmfl.preprocess.geometry import box_grid

    return float(box_grid(tuple(centre), 4.0, config.box_mm).contains(points).mean())


def _is_tumour(xyz, points) -> bool:
    """A candidate centre within 30 mm of the contour centroid or 10 mm of the contour."""
    xyz = np.asarray(xyz)
    return bool(np.linalg.norm(xyz - points.mean(axis=0)) <= 30.0
                or np.min(np.linalg.norm(points - xyz, axis=1)) <= 10.0)


def evaluate(ct, pet, points, config) -> list[dict]:
    """Rows for the old hotspot rule and for ``locate_tumour`` on one study."""
    from chmfl.preprocess.localise import locate_tumour

    centroid = points.mean(axis=0)
    ref = _box_fraction(centroid, points, config)
    t0 = time.perf_counter()
    h = config.hotspot
    old = hotspot_before(pet, h.sigma_mm, h.threshold_suv, h.fraction)
    t1 = time.perf_counter()
    loc = locate_tumour(ct, pet, config)
    t2 = time.perf_counter()
    rows = [{"method": "hotspot", "decision": "chosen", "centre": old, "seconds": t1 - t0}]
    best = loc.best
    rows.append({"method": "localise", "decision": loc.decision, "reason": loc.reason,
                 "centre": None if loc.centre_xyz is None else np.asarray(loc.centre_xyz),
                 "best": None if best is None else np.asarray(best.centre_xyz), "seconds": t2 - t1,
                 "listed": any(_is_tumour(c.centre_xyz, points) for c in loc.candidates[:LISTED]),
                 "candidates": len(loc.candidates)})
    for row in rows:
        c = row.pop("centre")
        row["error_mm"] = np.nan if c is None else float(np.linalg.norm(c - centroid))
        row["box_fraction"] = np.nan if c is None else _box_fraction(c, points, config)
        row["box_ok90"] = bool(c is not None and row["box_fraction"] >= 0.9 * ref)
        row["whole_in_box"] = bool(c is not None and row["box_fraction"] >= 0.999)
        b = row.pop("best", None)
        row["best_error_mm"] = row["error_mm"] if b is None else float(np.linalg.norm(b - centroid))
        row["ref_box_fraction"] = ref
    return rows


def summarise(df: pd.DataFrame) -> list[dict]:
    out = []
    for (setting, method), g in df.groupby(["setting", "method"], sort=False):
        chosen = g[g.decision == "chosen"]
        refused = g[g.decision == "refused"]
        err = chosen.error_mm
        near = chosen.error_mm <= 30.0
        fits = g.ref_box_fraction >= 0.999  # the contour-centred box holds the whole tumour
        out.append({
            "setting": setting, "method": method, "n": len(g), "chosen": len(chosen), "refused": len(refused),
            "refused_listing_tumour": int(refused.listed.fillna(False).astype(bool).sum()),
            "median_error_mm": round(float(err.median()), 1), "mean_error_mm": round(float(err.mean()), 1),
            "p90_error_mm": round(float(err.quantile(0.9)), 1), "chosen_within_30mm": int(near.sum()),
            "box_ok90": int(g.box_ok90.sum()), "whole_tumour_in_box": int(g.whole_in_box.sum()),
            "whole_in_box_of_fitting": f"{int(g.whole_in_box[fits].sum())}/{int(fits.sum())}",
            "median_box_fraction": round(float(chosen.box_fraction.median()), 3),
            "pass_30mm_or_listed_refusal": int(near.sum() + refused.listed.fillna(False).astype(bool).sum()),
            "median_seconds": round(float(g.seconds.median()), 2),
        })
    return out


def _labelled() -> set[str]:
    """The 48 patients with a DM label (the bundled manifest's)."""
    from chmfl.preprocess.bundle import demo_cache_dir

    m = pd.read_csv(demo_cache_dir() / "manifest.csv", dtype={"patient_id": str})
    return set(m.loc[m.dm.notna(), "patient_id"])


def run_patient(folder: Path, site: str, settings: list[str], config, dicom: bool, ct_step: int) -> list[dict]:
    from chmfl.synth.wholebody import embed_crop, with_ct, write_study

    ct, pet, points = load_patient(folder)
    seed = int("".join(ch for ch in folder.name if ch.isdigit()) or 0)
    rows, body = [], None
    for setting in settings:
        info = {}
        if SETTINGS[setting] is None:
            sct, spet = ct, pet
        else:
            if body is None:
                t0 = time.perf_counter()
                body = embed_crop(ct, pet, tuple(points.mean(axis=0)), site, seed, ct_step=ct_step)
                info["make_s"] = time.perf_counter() - t0
            study = with_ct(body, ct, SETTINGS[setting])
            sct, spet = study.ct, study.pet
            if dicom:
                sct, spet, info = _through_dicom(study, folder.name, info, write_study)
        for row in evaluate(sct, spet, points, config):
            rows.append({"patient_id": folder.name, "site": site, "setting": setting, **row, **info,
                         "pet_shape": "x".join(map(str, spet.shape)), "ct_shape": "x".join(map(str, sct.shape))})
    return rows


def _through_dicom(study, pid, info, write_study):
    from chmfl.io.imageio import read_image

    tmp = Path(tempfile.mkdtemp(prefix="chmfl-wb-"))
    try:
        t0 = time.perf_counter()
        ct_dir, pet_dir = write_study(study, tmp, pid)
        t1 = time.perf_counter()
        ct, pet = read_image(ct_dir), read_image(pet_dir)
        info.update(write_s=t1 - t0, read_s=time.perf_counter() - t1)
        return ct, pet, info
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--source", default=SOURCE)
    p.add_argument("--clinical", default=CLINICAL)
    p.add_argument("--settings", nargs="+", default=list(SETTINGS), choices=list(SETTINGS))
    p.add_argument("--patients", nargs="*")
    p.add_argument("--dicom", action="store_true", help="write each synthetic study as DICOM and read it back")
    p.add_argument("--ct-step", type=int, default=1, help="whole-body CT pixels this many times the crop's (speed)")
    p.add_argument("--out", default="benchmarks/results/localise")
    args = p.parse_args()
    if not Path(args.source).is_dir():
        print(f"skipped: {args.source} not found (see /work/shared/data/README.md)")
        return 0
    from chmfl.preprocess.config import PrepareConfig

    sites = {}
    if Path(args.clinical).is_file():
        sheet = pd.read_excel(args.clinical)
        sites = dict(zip(sheet["Patient ID"].astype(str), sheet["Site of primary STS"].astype(str)))
    folders = sorted(d for d in Path(args.source).iterdir() if d.is_dir()
                     and (not args.patients or d.name in args.patients))
    config, rows = PrepareConfig(), []
    start = machine()
    for folder in folders:
        rows += run_patient(folder, sites.get(folder.name, "thigh"), args.settings, config, args.dicom, args.ct_step)
        last = [r for r in rows if r["patient_id"] == folder.name and r["method"] == "localise"]
        print(folder.name, " ".join(f"{r['setting']}:{r['decision'][0]}{r['error_mm']:.0f}" for r in last), flush=True)
    df = pd.DataFrame(rows)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    df.to_csv(out / "per_study.csv", index=False)
    labelled = _labelled()
    record = {"machine": start, "machine_end": machine(), "dicom": args.dicom, "ct_step": args.ct_step,
              "config": config.hotspot.__dict__,
              "all": summarise(df), "labelled_48": summarise(df[df.patient_id.isin(labelled)])}
    write(out / "summary.json", record)
    print(pd.DataFrame(record["all"]).to_string(index=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
