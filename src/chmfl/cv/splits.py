"""Patient-level, label-stratified cross-validation splits: made once, saved, shared.

Every method of an experiment reads the same ``splits.json`` (docs/results-format.md):
``{"seed": S, "n_folds": K, "repeats": [{"repeat": r, "seed": S + r,
"folds": [{"fold": k, "train": [ids], "test": [ids]}, ...]}, ...]}``.
Repeat r uses scikit-learn's ``StratifiedKFold(K, shuffle=True, random_state=S + r)`` over
the patients sorted by id, so the split does not depend on the order the caller lists them.
With the paper's 48 patients (24 DM) and 6 folds each test fold holds 8 patients, 4 DM.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from chmfl.errors import ChmflError
from chmfl.fsutil import atomic_path


def _validate_inputs(ids: list[str], labels: list[int], n_folds: int, repeats: int) -> None:
    if len(ids) != len(labels):
        raise ChmflError(f"{len(ids)} patient ids but {len(labels)} labels")
    dup = [pid for pid, c in Counter(ids).items() if c > 1]
    if dup:
        raise ChmflError(f"duplicate patient id(s) in the split input: {', '.join(dup[:5])}")
    if n_folds < 2 or repeats < 1:
        raise ChmflError(f"need n_folds >= 2 and repeats >= 1, got n_folds={n_folds}, repeats={repeats}")
    bad = sorted({lab for lab in labels if lab not in (0, 1)})
    if bad:
        raise ChmflError(f"labels must be 0/1 for a stratified split, got {bad}")
    counts = Counter(labels)
    if min(counts.get(0, 0), counts.get(1, 0)) < n_folds:
        raise ChmflError(
            f"each class needs at least n_folds={n_folds} patients to stratify; "
            f"got {counts.get(1, 0)} DM and {counts.get(0, 0)} no DM"
        )


def make_splits(
    patient_ids: Sequence[str], labels: Sequence[int], n_folds: int = 6, repeats: int = 1, seed: int = 0
) -> dict:
    """Stratified K-fold splits of patients for ``repeats`` repeats, seeded ``seed + repeat``."""
    from sklearn.model_selection import StratifiedKFold

    ids = [str(p) for p in patient_ids]
    labs = [int(v) for v in labels]
    _validate_inputs(ids, labs, n_folds, repeats)
    order = sorted(range(len(ids)), key=lambda i: ids[i])
    ids_sorted = np.array([ids[i] for i in order])
    labs_sorted = np.array([labs[i] for i in order])
    out_repeats = []
    for r in range(repeats):
        skf = StratifiedKFold(n_splits=n_folds, shuffle=True, random_state=seed + r)
        folds = [
            {"fold": k, "train": sorted(ids_sorted[tr].tolist()), "test": sorted(ids_sorted[te].tolist())}
            for k, (tr, te) in enumerate(skf.split(ids_sorted, labs_sorted))
        ]
        out_repeats.append({"repeat": r, "seed": seed + r, "folds": folds})
    splits = {"seed": int(seed), "n_folds": int(n_folds), "repeats": out_repeats}
    check_splits(splits, ids)
    return splits


def check_splits(splits: dict, patient_ids: Sequence[str] | None = None) -> None:
    """Raise ChmflError unless, in every repeat, test folds are disjoint, cover every patient
    (all of ``patient_ids`` when given), and each fold's train set is exactly the rest."""
    try:
        repeats = splits["repeats"]
        n_folds = int(splits["n_folds"])
    except (KeyError, TypeError, ValueError) as exc:
        raise ChmflError(f"splits lack 'repeats' or 'n_folds' ({exc})") from None
    expected = set(map(str, patient_ids)) if patient_ids is not None else None
    try:
        for rep in repeats:
            _check_repeat(rep, n_folds, expected)
    except (KeyError, TypeError, AttributeError) as exc:
        raise ChmflError(f"splits are malformed: missing or wrong entry {exc}") from None


def _check_repeat(rep: dict, n_folds: int, expected: set[str] | None) -> None:
    """One repeat: test folds disjoint and covering, train = the other folds."""
    r = rep.get("repeat", "?")
    folds = rep.get("folds", [])
    if len(folds) != n_folds:
        raise ChmflError(f"splits repeat {r}: {len(folds)} folds, n_folds says {n_folds}")
    tests = [set(map(str, f["test"])) for f in folds]
    everyone = set().union(*tests)
    if sum(len(t) for t in tests) != len(everyone):
        raise ChmflError(f"splits repeat {r}: a patient is in more than one test fold")
    if expected is not None and everyone != expected:
        diff = sorted(everyone ^ expected)
        raise ChmflError(f"splits repeat {r}: test folds do not cover exactly the patients (e.g. {diff[:3]})")
    for f, test in zip(folds, tests):
        train = set(map(str, f["train"]))
        if len(train) != len(f["train"]) or train & test or train | test != everyone:
            raise ChmflError(f"splits repeat {r} fold {f.get('fold')}: train is not exactly the other folds' patients")


def save_splits(splits: dict, path: str | Path) -> Path:
    """Check ``splits`` and write them as JSON to ``path`` atomically; returns the path."""
    check_splits(splits)
    path = Path(path)
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(splits, indent=1) + "\n", encoding="utf-8")
    return path


def load_splits(path: str | Path, patient_ids: Sequence[str] | None = None) -> dict:
    """Read and check ``splits.json`` (against ``patient_ids`` when given)."""
    path = Path(path)
    if not path.is_file():
        raise ChmflError(f"splits file not found: {path}")
    try:
        splits = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ChmflError(f"splits file {path} is not valid JSON: {exc}") from None
    if not isinstance(splits, dict):
        raise ChmflError(f"splits file {path}: expected a JSON object at the top level")
    try:
        check_splits(splits, patient_ids)
    except ChmflError as exc:
        raise ChmflError(f"{path}: {exc}") from None
    return splits


def fold_of_patient(splits: dict, repeat: int = 0) -> dict[str, int]:
    """Map each patient to the fold in which it is a test patient, for one repeat."""
    for rep in splits["repeats"]:
        if int(rep["repeat"]) == repeat:
            return {str(pid): int(f["fold"]) for f in rep["folds"] for pid in f["test"]}
    raise ChmflError(f"splits have no repeat {repeat}")
