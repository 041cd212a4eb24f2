"""Re-predict the test folds of a finished run with BatchNorm on per-sample statistics.

Same trained weights, only the inference mode of BatchNorm changes: isolates the effect of
BatchNorm's running averages (PyTorch eval mode) after training at batch size 1.
Usage: python benchmarks/trap/repredict.py RESULTS_DIR METHOD_LABEL CACHE
"""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd
from sklearn.metrics import roc_auc_score

from chmfl.data.cases import load_cases
from chmfl.methods.neural import NeuralMethod


def main(results: str, label: str, cache: str) -> None:
    cases = {c.patient_id: c for c in load_cases(cache)}
    preds = pd.read_csv(Path(results) / "predictions.csv", dtype={"patient_id": str})
    preds = preds[preds["method"] == label]
    rows = []
    for fold, g in preds.groupby("fold"):
        m = NeuralMethod.load(Path(results) / label / "repeat_0" / f"fold_{fold}" / "model")
        test = [cases[p] for p in g["patient_id"]]
        for mode in ("running", "sample"):
            m.train = m.train.replace(bn_eval=mode)
            p = m.predict_proba(test)
            rows += [{"fold": fold, "mode": mode, "patient_id": c.patient_id, "label": c.label,
                      "probability": float(q)} for c, q in zip(test, p)]
    df = pd.DataFrame(rows)
    for mode, g in df.groupby("mode"):
        per_fold = [roc_auc_score(f["label"], f["probability"]) for _, f in g.groupby("fold")]
        print(f"{mode:8s} pooled AUC {roc_auc_score(g['label'], g['probability']):.3f}  "
              f"mean fold AUC {sum(per_fold) / len(per_fold):.3f}")
    df.to_csv(Path(results) / "repredict_bn_modes.csv", index=False)


if __name__ == "__main__":
    main(*sys.argv[1:4])
