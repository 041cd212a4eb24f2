"""CNLPC checked on its source's own data and protocol (hn_cnn, Mateus et al. 2023).

    python benchmarks/hn_cnn_dm.py --data ../shared/data/hn-cnn-dm --out OUT [--stage all]

Stages (each resumable; ``all`` runs them in order):

* ``prepare``: the two cohorts' CSVs -> chmfl labels CSVs; ``chmfl data prepare`` of the
  slice folders (Canada with hn_cnn's 2-year DM label: non-events followed < 730 days left
  out; Maastro with every patient and any DM, its 2-year subset kept in the manifest times).
* ``cohort``: ``cnlpc`` (hn_cnn's settings) trained on HGJ + CHUS one epoch at a time (exact
  resume from the fold checkpoint); after each epoch the eval-mode AUC on the training and
  on the HMR + CHUM cohort. hn_cnn's rules: stop once the training AUC exceeds 0.95 (or at
  ``--max-epochs``, hn_cnn: 3000); the selected epoch is the first with the best validation
  AUC among epochs with validation AUC > 0.8 and |validation - training AUC| < 0.03 (its DM
  run's ``STORE_MODEL``; if none qualifies, the best validation AUC, said in the record).
* ``test``: the selected model predicts the 137 Maastro patients once (refused if done):
  test AUC with a stratified bootstrap 95 % CI on hn_cnn's test set (2-year label, 109
  patients) and on all 137 with any DM; beside the published 0.89.
* ``cv``: ``chmfl cv`` of ``cnlpc`` on the included Canadian patients, stratified 5 folds x
  ``--cv-repeats`` repeats, at the epoch chosen on HMR + CHUM (``--cv-epochs`` overrides);
  ``cv-summary`` sums up the finished folds of an unfinished CV run.

Everything lands in OUT (record.json sums it up); nothing is chosen on Maastro.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

HORIZON = 730  # hn_cnn TIME_TO_EVENT: 2 years
PUBLISHED = {"test_auc": 0.89, "validation_auc": 0.89, "epoch": 689, "n_test": 109, "test_events": 7}


def _labels_csvs(data: Path, out: Path) -> dict[str, Path]:
    """hn_cnn's outcome columns -> chmfl labels CSVs (patient_id, dm, event, times)."""
    canada = pd.read_csv(data / "canada.csv", sep=";")
    maastro = pd.read_csv(data / "maastro.csv", sep=";")
    frames = {
        "canada": pd.DataFrame({
            "patient_id": canada["id"], "dm": canada["Distant"], "event": canada["Distant"],
            "days_to_outcome": canada["Time - diagnosis to DM (days)"],
            "days_to_last_followup": canada["Time - diagnosis to last follow-up(days)"]}),
        "maastro": pd.DataFrame({
            "patient_id": maastro["id"], "dm": maastro["event_distant_metastases"],
            "event": maastro["event_distant_metastases"],
            "days_to_outcome": maastro["distant_metastases_in_days"],
            "days_to_last_followup": maastro["distant_metastases_in_days"]})}
    paths = {}
    for name, df in frames.items():
        df["time_days"] = np.where(df["event"] == 1, df["days_to_outcome"], df["days_to_last_followup"])
        paths[name] = out / "labels" / f"{name}.csv"
        paths[name].parent.mkdir(parents=True, exist_ok=True)
        df.to_csv(paths[name], index=False)
    return paths


def stage_prepare(data: Path, out: Path) -> dict:
    from chmfl.preprocess.slices import prepare_slice_cohort

    csvs = _labels_csvs(data, out)
    canada = prepare_slice_cohort(data / "canada_c", out / "cache" / "canada", csvs["canada"], horizon_days=HORIZON)
    maastro = prepare_slice_cohort(data / "maastro_c", out / "cache" / "maastro", csvs["maastro"])
    counts = {}
    for name, res in (("canada", canada), ("maastro", maastro)):
        m = res.manifest
        counts[name] = {"patients": len(m), "dm": int((m["dm"] == 1).sum()), "no_dm": int((m["dm"] == 0).sum()),
                        "excluded": int(m["dm"].isna().sum())}
    return counts


def _cohorts(out: Path):
    from chmfl.data.cases import load_cases

    canada = load_cases(out / "cache" / "canada")
    train = [c for c in canada if c.patient_id.split("-")[1] in ("HGJ", "CHUS")]
    val = [c for c in canada if c.patient_id.split("-")[1] in ("HMR", "CHUM")]
    return train, val


def _method(workdir: Path, epochs: int, threads: int, seed: int):
    """``cnlpc`` with its registered (hn_cnn's) science for ``epochs`` epochs, checkpointed in
    ``workdir``; one thread and channels-last 2D maps (a speed option: same arithmetic)."""
    from chmfl.methods.base import FitContext
    from chmfl.methods.registry import create, method_train
    from chmfl.methods.runtime import RuntimeConfig
    from chmfl.methods.spec import MethodRun
    from chmfl.methods.train_config import TrainConfig

    train = TrainConfig.from_dict({**method_train("cnlpc"), "epochs": epochs})
    runtime = RuntimeConfig.from_dict({"num_threads": threads, "channels_last": True})
    return create(MethodRun("cnlpc"), FitContext(train, runtime, seed, workdir, progress=False))


def _auc(y, p) -> float:
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(y, p))


def _selected(log: pd.DataFrame) -> tuple[int, str]:
    """hn_cnn's model choice (fit.py with the DM run's STORE_MODEL) over the epoch log."""
    ok = log[(log["val_auc"] > 0.8) & ((log["val_auc"] - log["train_auc"]).abs() < 0.03)]
    if len(ok):
        return int(ok.loc[ok["val_auc"].idxmax(), "epoch"]), "val AUC > 0.8 and |val - train| < 0.03"
    return int(log.loc[log["val_auc"].idxmax(), "epoch"]), "no epoch met hn_cnn's rule: best val AUC"


def stage_cohort(out: Path, max_epochs: int, threads: int, seed: int) -> dict:
    """Train on HGJ + CHUS one epoch at a time, evaluate, keep the selected epoch's model."""
    from chmfl.data.cases import labels_of
    from chmfl.fsutil import atomic_path

    train, val = _cohorts(out)
    folder = out / "cohort"
    log_path = folder / "epochs.csv"
    rows = pd.read_csv(log_path).to_dict("records") if log_path.is_file() else []
    y_val = labels_of(val)
    while (not rows or rows[-1]["train_auc"] <= 0.95) and len(rows) < max_epochs:
        t0 = time.perf_counter()
        m = _method(folder / "work", len(rows) + 1, threads, seed).fit(train)
        p_val = m.predict_proba(val)
        h = m.history_[-1]
        rows.append({"epoch": h["epoch"], "loss": h["loss"], "train_auc_trainmode": h["train_auc"],
                     "train_auc": m.diagnostics_["train_auc_eval_running"], "val_auc": _auc(y_val, p_val),
                     "seconds": time.perf_counter() - t0})
        log = pd.DataFrame(rows)
        if _selected(log)[0] == rows[-1]["epoch"]:
            m.save(folder / "selected_model", extra={"epoch": rows[-1]["epoch"]})
        with atomic_path(log_path) as tmp:
            log.to_csv(tmp, index=False)
        print(f"epoch {rows[-1]['epoch']}: train AUC {rows[-1]['train_auc']:.3f} "
              f"val AUC {rows[-1]['val_auc']:.3f} ({rows[-1]['seconds']:.1f} s)", flush=True)
    epoch, rule = _selected(pd.DataFrame(rows))
    sel = next(r for r in rows if r["epoch"] == epoch)
    return {"n_train": len(train), "train_events": int(labels_of(train).sum()), "n_val": len(val),
            "val_events": int(y_val.sum()), "epochs_run": len(rows),
            "stopped_by": "train AUC > 0.95" if rows[-1]["train_auc"] > 0.95 else f"max epochs {max_epochs}",
            "selected_epoch": epoch, "selection_rule": rule, "selected_train_auc": sel["train_auc"],
            "selected_val_auc": sel["val_auc"]}


def _test_row(y: np.ndarray, p: np.ndarray, what: str) -> dict:
    from chmfl.stats.intervals import bootstrap_ci

    low, high = bootstrap_ci(y, p, "auc", n=2000, seed=0)
    return {"set": what, "n": int(len(y)), "events": int(y.sum()), "auc": _auc(y, p),
            "ci95_low": low, "ci95_high": high}


def stage_test(out: Path) -> dict:
    """The selected model on Maastro, once; later calls read the stored predictions."""
    from chmfl.cohort.clinical import apply_horizon, read_clinical
    from chmfl.data.cases import load_cases
    from chmfl.fsutil import atomic_path
    from chmfl.methods.neural import NeuralMethod

    pred_path = out / "test" / "predictions.csv"
    if not pred_path.is_file():
        cases = load_cases(out / "cache" / "maastro")
        model = NeuralMethod.load(out / "cohort" / "selected_model")
        preds = pd.DataFrame({"patient_id": [c.patient_id for c in cases], "dm_any": [c.label for c in cases],
                              "probability": model.predict_proba(cases)})
        with atomic_path(pred_path) as tmp:
            preds.to_csv(tmp, index=False)
    else:
        print(f"{pred_path} exists: the test cohort was predicted once already; reading it", flush=True)
    preds = pd.read_csv(pred_path, dtype={"patient_id": str})
    two_year = apply_horizon(read_clinical(out / "labels" / "maastro.csv"), HORIZON)
    sub = preds[[two_year[p].dm is not None for p in preds["patient_id"]]]
    y2 = np.array([two_year[p].dm for p in sub["patient_id"]], dtype=int)
    return {"source_protocol": _test_row(y2, sub["probability"].to_numpy(), "2-year DM, hn_cnn's test set"),
            "all_patients": _test_row(preds["dm_any"].to_numpy(int), preds["probability"].to_numpy(),
                                      "any DM, all 137"),
            "published": PUBLISHED, "tumour_area_baseline": _area_baseline(out, list(sub["patient_id"]), y2)}


def _area_baseline(out: Path, test_ids: list[str], y_test: np.ndarray) -> dict:
    """Explanatory, after the test: the AUC of the tumour's pixel count on the slice (no
    training, no choice) on each cohort; how much of the task the tumour's size carries."""
    from chmfl.data.cases import labels_of, load_cases

    train, val = _cohorts(out)
    by_id = {c.patient_id: c for c in load_cases(out / "cache" / "maastro")}
    area = lambda cases: np.array([int(c.load().mask.sum()) for c in cases])  # noqa: E731
    return {"train_auc": _auc(labels_of(train), area(train)), "val_auc": _auc(labels_of(val), area(val)),
            "test_auc": _auc(y_test, area([by_id[p] for p in test_ids]))}


def stage_cv(out: Path, epochs: int, repeats: int, threads: int, seed: int) -> dict:
    """``chmfl cv --methods cnlpc --folds 5 --repeats R --epochs E --set num_threads=1 --set
    channels_last=true`` on the Canadian cache."""
    from chmfl.cv.experiment import custom_experiment
    from chmfl.cv.runner import RunOptions, run_experiment

    exp = custom_experiment(["cnlpc"], folds=5, repeats=repeats)
    run_experiment(exp, out / "cache" / "canada", out / "cv",
                   RunOptions(seed=seed, epochs=epochs, train={"num_threads": threads, "channels_last": True},
                              progress=False))
    return {"epochs": epochs, **summarise_cv(out / "cv")}


def summarise_cv(results: Path) -> dict:
    """Pooled and per-fold AUC of every finished fold (``done.json``), per repeat; a repeat
    counts as complete with all 5 folds; a patient bootstrap 95 % interval of the mean pooled
    AUC over complete repeats. Works on an unfinished run too (CPU budgets)."""
    from chmfl.stats.intervals import bootstrap_repeat_mean

    folds = sorted((results / "cnlpc").glob("repeat_*/fold_*/done.json"))
    preds = pd.concat([pd.read_csv(d.parent / "predictions.csv", dtype={"patient_id": str}) for d in folds],
                      ignore_index=True)
    pooled, per_fold, complete = [], [], []
    for _, g in preds.groupby("repeat"):
        per_fold += [_auc(f["label"], f["probability"]) for _, f in g.groupby("fold")]
        if g["fold"].nunique() == 5:
            pooled.append(_auc(g["label"], g["probability"]))
            complete.append(g.set_index("patient_id").sort_index())
    ci = [float("nan")] * 2
    if complete:
        probs = np.stack([c["probability"].to_numpy() for c in complete])
        ci = list(bootstrap_repeat_mean(complete[0]["label"].to_numpy(), probs)["auc"])
    return {"folds_done": len(folds), "complete_repeats": len(pooled),
            "pooled_auc_per_repeat": [round(v, 4) for v in pooled],
            "pooled_auc_mean": float(np.mean(pooled)) if pooled else float("nan"), "pooled_auc_ci95": ci,
            "fold_auc_mean": float(np.mean(per_fold)),
            "fold_auc_sd": float(np.std(per_fold, ddof=1)) if len(per_fold) > 1 else float("nan"),
            "n_patients": int(preds.groupby("repeat").size().max()),
            "events": int(preds.groupby("repeat")["label"].sum().max())}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, required=True, help="the hn-cnn-dm folder (canada.csv, canada_c/, ...)")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--stage", choices=("prepare", "cohort", "test", "cv", "cv-summary", "all"), default="all")
    ap.add_argument("--max-epochs", type=int, default=3000, help="hn_cnn: 3000")
    ap.add_argument("--cv-repeats", type=int, default=5)
    ap.add_argument("--cv-epochs", type=int, help="default: the epoch chosen on HMR + CHUM")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    from chmfl.cv.record import git_commit, hardware, versions
    from chmfl.fsutil import atomic_path

    record_path = args.out / "record.json"
    record = json.loads(record_path.read_text()) if record_path.is_file() else {}
    record.update(command=" ".join([Path(sys.argv[0]).name, *(argv or sys.argv[1:])]), seed=args.seed,
                  git_commit=git_commit(), hardware=hardware(), versions=versions())
    stages = ("prepare", "cohort", "test", "cv") if args.stage == "all" else (args.stage,)
    for stage in stages:
        t0 = time.perf_counter()
        if stage == "prepare":
            record["prepare"] = stage_prepare(args.data, args.out)
        elif stage == "cohort":
            record["cohort"] = stage_cohort(args.out, args.max_epochs, args.threads, args.seed)
        elif stage == "test":
            record["test"] = stage_test(args.out)
        elif stage == "cv-summary":  # an unfinished CV run: what its finished folds say
            record["cv"] = {"epochs": args.cv_epochs, "unfinished": True, **summarise_cv(args.out / "cv")}
            stage = "cv"
        else:
            epochs = args.cv_epochs or record["cohort"]["selected_epoch"]
            record["cv"] = stage_cv(args.out, epochs, args.cv_repeats, args.threads, args.seed)
        record.setdefault("seconds", {})[stage] = round(time.perf_counter() - t0, 1)
        with atomic_path(record_path) as tmp:
            tmp.write_text(json.dumps(record, indent=2, default=str))
        print(json.dumps({stage: record[stage]}, indent=2, default=str), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
