"""Tables of an unfinished flagship run: only the (repeat, fold) test folds that every row of
the experiment finished, with the design's K in the corrected statistics (n_test/n_train of
6-fold CV, not of the number of folds that finished). Writes OUT/partial/ with the files a
finished run writes (predictions, metrics, timing, summary, comparisons) through the runner's
own ``write_summaries``; then ``table.py OUT/partial`` prints the table.

Usage: python benchmarks/flagship/partial.py OUT [EXPERIMENT.yaml]
"""

from __future__ import annotations

import sys
from pathlib import Path
from types import SimpleNamespace

import pandas as pd

from chmfl.cv.experiment import load_experiment
from chmfl.cv.runner import write_summaries


def finished_folds(out: Path, labels: list[str]) -> list[tuple[int, int]]:
    """(repeat, fold) pairs with a done.json for every label."""
    sets = [{(int(p.parent.parent.name.split("_")[1]), int(p.parent.name.split("_")[1]))
             for p in (out / label).glob("repeat_*/fold_*/done.json")} for label in labels]
    return sorted(set.intersection(*sets))


def main(out: Path, experiment: Path) -> Path:
    exp = load_experiment(str(experiment))
    labels = [m.label for m in exp.methods]
    folds = finished_folds(out, labels)
    if not folds:
        raise SystemExit(f"{out}: no test fold finished by every row")
    # the hotspot regime's rows (``LABEL@hotspot``, --test-box contour,hotspot), on the same folds
    labels += [f"{label}@hotspot" for label in labels
               if all((out / f"{label}@hotspot" / f"repeat_{r}" / f"fold_{f}" / "done.json").exists()
                      for r, f in folds)]
    jobs = [SimpleNamespace(label=label, repeat=r, fold=f, out=out / label / f"repeat_{r}" / f"fold_{f}",
                            run=SimpleNamespace(select=None))  # no flagship row selects
            for r, f in folds for label in labels]
    preds = pd.concat([pd.read_csv(j.out / "predictions.csv", dtype={"patient_id": str}) for j in jobs],
                      ignore_index=True)
    dest = out / "partial"
    dest.mkdir(exist_ok=True)
    write_summaries(dest, preds, jobs, exp.reference, k=exp.folds)
    (dest / "folds.txt").write_text("".join(f"repeat {r} fold {f}\n" for r, f in folds))
    print(f"{len(folds)} of {exp.folds * exp.repeats} test folds finished by every row: {folds}")
    return dest


if __name__ == "__main__":
    here = Path(__file__).resolve().parent
    main(Path(sys.argv[1]), Path(sys.argv[2]) if len(sys.argv) > 2 else here / "flagship.yaml")
