"""Splits: patient-level, stratified, seeded, disjoint and covering; saved and loaded intact."""

from __future__ import annotations

import json

import pytest

from chmfl.cv.splits import check_splits, fold_of_patient, load_splits, make_splits, save_splits
from chmfl.errors import ChmflError

IDS = [f"STS_{i:03d}" for i in range(1, 49)]
LABELS = [i % 2 for i in range(48)]  # 24 DM, 24 no DM as in the paper


def test_paper_layout_48_patients_6_folds():
    splits = make_splits(IDS, LABELS, n_folds=6, repeats=2, seed=0)
    label = dict(zip(IDS, LABELS))
    assert splits["seed"] == 0 and splits["n_folds"] == 6
    assert [r["seed"] for r in splits["repeats"]] == [0, 1]
    for rep in splits["repeats"]:
        tests = [f["test"] for f in rep["folds"]]
        assert all(len(t) == 8 and sum(label[p] for p in t) == 4 for t in tests)
        assert sorted(p for t in tests for p in t) == sorted(IDS)
        for f in rep["folds"]:
            assert not set(f["train"]) & set(f["test"]) and len(f["train"]) == 40
    assert splits["repeats"][0]["folds"] != splits["repeats"][1]["folds"]


def test_seeded_and_independent_of_input_order():
    a = make_splits(IDS, LABELS, seed=3)
    b = make_splits(IDS[::-1], LABELS[::-1], seed=3)
    assert a == b
    assert a != make_splits(IDS, LABELS, seed=4)


def test_save_load_round_trip(tmp_path):
    splits = make_splits(IDS, LABELS, repeats=2)
    path = save_splits(splits, tmp_path / "splits.json")
    assert load_splits(path, IDS) == splits
    assert json.loads(path.read_text())["repeats"][1]["repeat"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["splits.json"]  # no temporary left behind
    assert fold_of_patient(splits, 1)[IDS[0]] in range(6)


def test_check_rejects_overlap_and_missing(tmp_path):
    splits = make_splits(IDS, LABELS)
    folds = splits["repeats"][0]["folds"]
    folds[1]["test"].append(folds[0]["test"][0])
    with pytest.raises(ChmflError, match="more than one test fold"):
        check_splits(splits)
    good = make_splits(IDS, LABELS)
    with pytest.raises(ChmflError, match="cover"):
        check_splits(good, IDS + ["STS_999"])
    good["repeats"][0]["folds"][0]["train"].pop()
    with pytest.raises(ChmflError, match="train"):
        check_splits(good)
    bad = tmp_path / "bad.json"
    bad.write_text('{"n_folds": 2, "repeats": [{"folds": [{"fold": 0}, {"fold": 1}]}]}')
    with pytest.raises(ChmflError, match="malformed"):
        load_splits(bad)
    bad.write_text("not json")
    with pytest.raises(ChmflError, match="not valid JSON"):
        load_splits(bad)


def test_bad_inputs():
    with pytest.raises(ChmflError, match="duplicate"):
        make_splits(["a", "a"], [0, 1], n_folds=2)
    with pytest.raises(ChmflError, match="at least n_folds"):
        make_splits(IDS[:10], [1] * 3 + [0] * 7, n_folds=6)
    with pytest.raises(ChmflError, match="0/1"):
        make_splits(["a", "b"], [0, 2], n_folds=2)
