"""2D slice cohorts (hn_cnn's layout): a folder of per-patient PNG or NIfTI slices + a labels
CSV becomes a chmfl cache that ``chmfl cv``, ``train`` and ``predict`` run on."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk
import torch

from chmfl.cli.main import main
from chmfl.cohort.layouts import detect_layout, find_cases
from chmfl.data.cases import load_cases
from chmfl.errors import ChmflError
from chmfl.preprocess.slices import prepare_slice_cohort


def _png(path: Path, grey: np.ndarray) -> None:
    sitk.WriteImage(sitk.GetImageFromArray(grey.astype(np.uint8)), str(path))


def _tumour(label: int, seed: int, size: int = 12) -> np.ndarray:
    """A masked, windowed slice: grey 0 outside a disc, brighter and larger for label 1."""
    rng = np.random.default_rng(seed)
    y, x = np.indices((size, size))
    r = 4.5 if label else 2.5
    disc = (y - size / 2) ** 2 + (x - size / 2) ** 2 <= r * r
    return np.where(disc, rng.integers(60 if label else 20, 200 if label else 90, (size, size)), 0)


def _cohort(root: Path, n: int = 8) -> Path:
    """``n`` PNG slices + labels.csv with id, label, event and times (P007 censored early)."""
    root.mkdir(parents=True)
    rows = []
    for i in range(n):
        label = i % 2
        _png(root / f"P{i:03d}.png", _tumour(label, i))
        rows.append({"id": f"P{i:03d}", "label": label, "event": label,
                     "time_days": 400 if label else (300 if i == n - 2 else 1000)})
    pd.DataFrame(rows).to_csv(root / "labels.csv", index=False)
    return root


def test_png_slices_become_one_slice_boxes(tmp_path):
    src = _cohort(tmp_path / "src")
    assert detect_layout(src) == "slices"
    cases = find_cases(src)
    assert [c.patient_id for c in cases] == [f"P{i:03d}" for i in range(8)] and cases[0].pet is None
    res = prepare_slice_cohort(src, tmp_path / "cache")
    loaded = load_cases(tmp_path / "cache")
    assert len(loaded) == 8 and res.manifest["dm"].tolist() == [0, 1] * 4
    a = loaded[1].load()
    grey = _tumour(1, 1).astype(np.float32)
    assert a.ct.shape == (1, 12, 12) and a.pet is None and a.pet_suv is None
    np.testing.assert_allclose(a.ct[0], grey / 255)
    np.testing.assert_allclose(a.ct_hu[0], np.where(grey > 0, -50 + grey / 255 * 350, -1000), rtol=1e-6)
    np.testing.assert_array_equal(a.mask[0], grey > 0)
    assert a.spacing == (1.0, 1.0, 1.0)
    prep = (tmp_path / "cache" / "prepare_config.yaml").read_text()
    assert "kind: slices" in prep


def test_cnlpc_sees_exactly_the_png_over_255(tmp_path):
    """hn_cnn feeds ToTensor(PNG) = grey / 255; chmfl's cnlpc rebuilds it from the cached HU."""
    from chmfl.data.tensors import stack_cases
    from chmfl.models import build_model

    prepare_slice_cohort(_cohort(tmp_path / "src"), tmp_path / "cache")
    cases = load_cases(tmp_path / "cache")
    data = stack_cases(cases, require_mask=True, raw=True)
    img = build_model("cnlpc").image(data.pet, data.ct, data.mask)  # (8, 1, 180, 180)
    grey = np.stack([_tumour(i % 2, i) for i in range(8)]).astype(np.float32) / 255
    torch.testing.assert_close(img[:, 0, 84:96, 84:96], torch.from_numpy(grey))
    assert float(img.sum()) == pytest.approx(float(grey.sum()), rel=1e-5)


def test_horizon_labels_and_mask_files(tmp_path):
    src = _cohort(tmp_path / "src")
    _png(src / "P001_mask.png", np.ones((12, 12)))  # an explicit mask replaces grey > 0
    res = prepare_slice_cohort(src, tmp_path / "cache", horizon_days=730)
    m = res.manifest.set_index("patient_id")
    assert pd.isna(m.loc["P006", "dm"]) and "followed under 730" in m.loc["P006", "exclusion"]
    assert m.loc["P001", "dm"] == 1 and m.loc["P000", "dm"] == 0
    assert len(load_cases(tmp_path / "cache")) == 7
    assert load_cases(tmp_path / "cache")[1].load().mask.sum() == 144
    bare = tmp_path / "bare"
    bare.mkdir()
    _png(bare / "A.png", _tumour(1, 0))
    with pytest.raises(ChmflError, match="clinical file"):
        prepare_slice_cohort(bare, tmp_path / "c3", horizon_days=730)


def test_nifti_slices_keep_hu_and_spacing(tmp_path):
    src = tmp_path / "nii"
    src.mkdir()
    hu = np.array([[-100.0, 0.0], [150.0, 400.0]], dtype=np.float32)
    img = sitk.GetImageFromArray(hu)
    img.SetSpacing((0.8, 0.8))
    sitk.WriteImage(img, str(src / "A.nii.gz"))
    res = prepare_slice_cohort(src, tmp_path / "cache")
    a = load_cases(tmp_path / "cache", include_excluded=True)[0].load()
    assert res.manifest["dm"].isna().all()  # no clinical file: unlabelled
    np.testing.assert_allclose(a.ct_hu[0], hu)
    np.testing.assert_allclose(a.ct[0], [[0.0, 50 / 350], [200 / 350, 0.0]])  # band, not clip
    assert a.spacing == pytest.approx((1.0, 0.8, 0.8)) and a.mask is None


@pytest.mark.parametrize("bad", ["rgb", "sizes"])
def test_bad_slices_are_one_line_errors(tmp_path, bad):
    src = tmp_path / "src"
    src.mkdir()
    _png(src / "A.png", _tumour(1, 0))
    if bad == "rgb":
        sitk.WriteImage(sitk.Compose([sitk.GetImageFromArray(np.zeros((12, 12), np.uint8))] * 3), str(src / "B.png"))
    else:
        _png(src / "B.png", np.zeros((10, 12)))
    with pytest.raises(ChmflError, match="channels|differ in size"):
        prepare_slice_cohort(src, tmp_path / "cache")
    assert not (tmp_path / "cache").exists()  # nothing written


def test_cli_prepare_cv_train_predict_on_slices(tmp_path, capsys):
    src = _cohort(tmp_path / "src")
    cache, res, model = tmp_path / "cache", tmp_path / "res", tmp_path / "model"
    fast = ["--epochs", "1", "--set", "batch_size=4", "--set", "num_threads=1", "--no-progress"]
    assert main(["data", "prepare", str(src), "--out", str(cache), "--horizon-days", "730"]) == 0
    assert main(["cv", "--data", str(cache), "--out", str(res), "--methods", "cnlpc", "--folds", "2", "--repeats", "1", *fast]) == 0
    preds = pd.read_csv(res / "predictions.csv")
    assert len(preds) == 7 and preds["probability"].between(0, 1).all()
    done = json.loads((res / "cnlpc" / "repeat_0" / "fold_0" / "done.json").read_text())
    assert done["train"]["optimizer"] == "sgd" and done["train"]["class_weights"] == [0.7, 3.7]
    assert main(["train", "--data", str(cache), "--out", str(model), "--method", "cnlpc", *fast]) == 0
    out = tmp_path / "pred"
    assert main(["predict", "--model", str(model / "model"), "--ct", str(src / "P003.png"), "--out", str(out)]) == 0
    record = json.loads((out / "prediction.json").read_text())
    assert record["patient_id"] == "P003" and 0 <= record["probability"] <= 1
    assert main(["cv", "--data", str(cache), "--out", str(tmp_path / "r2"), "--methods", "cnn2d-petct",
                 "--folds", "2", *fast]) == 2
    assert "needs PET" in capsys.readouterr().err
