"""``chmfl features`` on tiny generated volumes: IBSI tags, long format, the IBSI grid, the cache,
bad inputs (one line naming the patient, no partial CSV), workers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import yaml
from contour_synth import cohort, write_patient

from chmfl.cli.main import main
from chmfl.errors import ChmflError
from chmfl.io.volume import Volume
from chmfl.radiomics.contour import InterpConfig, ibsi_grid, ibsi_resample, load_contour_params
from chmfl.radiomics.features_run import compute_features, params_file_path
from chmfl.radiomics.ibsi import IBSI_TAGS

IBSI_MIN = {"stat_min", "stat_mean", "stat_median", "stat_max", "morph_volume", "morph_vol_approx"}


@pytest.fixture(scope="module")
def native(tmp_path_factory):
    """Features of a 2-patient cohort on the images' own grids (fast)."""
    root = cohort(tmp_path_factory.mktemp("src"))
    out = tmp_path_factory.mktemp("out") / "features.csv"
    return root, out, compute_features(root, out, voxel_mm="native")


def test_long_table_with_ibsi_tags(native):
    root, out, res = native
    df = pd.read_csv(out, dtype={"patient_id": str})
    assert list(df.columns) == ["patient_id", "modality", "feature", "value"]
    assert set(df["patient_id"]) == {"p1", "p2"} and set(df["modality"]) == {"CT", "PET"}
    for (pid, mod), g in df.groupby(["patient_id", "modality"]):
        names = set(g["feature"])
        assert IBSI_MIN <= names, (pid, mod)
        assert "glcm_MCC" in names  # no IBSI counterpart: pyradiomics' name kept
        assert not names & set(IBSI_TAGS)  # every feature IBSI defines the same way is renamed
        assert "shape_MajorAxisLength" in names  # defined differently from IBSI: kept
        assert len(names) == len(g)  # one value per feature
    assert res.computed == ["p1", "p2"] and res.reused == []


def test_values_are_those_of_the_contour_on_each_images_own_grid(native):
    import SimpleITK as sitk

    root, out, _ = native
    df = pd.read_csv(out, dtype={"patient_id": str}).set_index(["patient_id", "modality", "feature"])["value"]
    ct = sitk.GetArrayFromImage(sitk.ReadImage(str(root / "imagesTr" / "p2_0000.nii.gz"))).astype(float)
    lab = sitk.GetArrayFromImage(sitk.ReadImage(str(root / "labelsTr" / "p2.nii.gz"))) > 0
    inside = ct[lab]
    inside = inside[(inside >= -200) & (inside <= 200)]  # the IBSI validation re-segmentation range
    assert df["p2", "CT", "stat_max"] == pytest.approx(inside.max())
    assert df["p2", "CT", "stat_mean"] == pytest.approx(inside.mean())
    assert df["p2", "CT", "morph_vol_approx"] == pytest.approx(lab.sum() * 2.5 * 1.5 * 1.5)
    # the mesh volume of a ball of radius 9 mm (3054 mm3) is close to it, the voxel count is coarser
    assert df["p2", "CT", "morph_volume"] == pytest.approx(4 / 3 * np.pi * 9**3, rel=0.1)
    assert df["p2", "PET", "stat_max"] == pytest.approx(7.0, abs=0.7)  # hot ball 6 + seed 1, noise


def test_params_file_beside_the_csv_is_a_parameter_file(native, tmp_path):
    root, out, res = native
    path = params_file_path(out)
    assert path.name == "features.params.yaml"
    doc = yaml.safe_load(path.read_text())
    assert doc["params_hash"] == res.params_hash and doc["voxel_mm_override"] == "native"
    again = load_contour_params(path)  # usable as --params
    assert again.interpolation["ct"].voxel_mm is None and again.hash() == res.params_hash


def test_cache_reused_and_invalidated(tmp_path):
    root = cohort(tmp_path / "src")
    out, cache = tmp_path / "a" / "f.csv", tmp_path / "cache"
    first = compute_features(root, out, voxel_mm="native", cache=cache)
    again = compute_features(root, tmp_path / "b" / "f.csv", voxel_mm="native", cache=cache)
    assert again.computed == [] and again.reused == ["p1", "p2"]
    pd.testing.assert_frame_equal(first.table, again.table)
    other = compute_features(root, tmp_path / "c" / "f.csv", voxel_mm=2.0, cache=cache)  # other parameters
    assert other.computed == ["p1", "p2"] and other.params_hash != first.params_hash
    write_patient(root, "p2", seed=1, radius=7.0)  # p2's input changes: only p2 again
    changed = compute_features(root, tmp_path / "d" / "f.csv", voxel_mm="native", cache=cache)
    assert changed.computed == ["p2"] and changed.reused == ["p1"]


def test_ibsi_grid_is_centred_and_ceiled():
    size, first = ibsi_grid((5, 4, 10), (2.0, 2.0, 1.0), 3.0)
    assert list(size) == [4, 3, 4]  # ceil(10/3), ceil(8/3), ceil(10/3)
    # grid centres coincide: original centre (n-1)/2 = new first + (m-1)/2 * 3/s
    np.testing.assert_allclose(first + (size - 1) / 2 * 3.0 / np.array([2.0, 2.0, 1.0]), (np.array([5, 4, 10]) - 1) / 2)


def test_ibsi_resample_keeps_a_linear_image_and_rounds():
    z, y, x = np.indices((20, 20, 20), dtype=float)
    image = Volume(10.0 * x + 0.3, (2.0, 2.0, 2.0), (0.0, 0.0, 0.0))
    mask = np.zeros((20, 20, 20), np.uint8)
    mask[5:15, 5:15, 5:15] = 1
    img, msk, spacing = ibsi_resample(image, mask, InterpConfig(1.0, "linear", None, 0.5))
    assert spacing == (1.0, 1.0, 1.0)
    assert np.allclose(np.diff(img, axis=2)[msk[:, :, 1:] > 0], 5.0)  # 10 per 2 mm -> 5 per 1 mm
    assert abs(int(msk.sum()) - 20**3) <= 2 * 20 * 20 * 3  # 10 voxels of 2 mm -> ~20 of 1 mm a side
    rounded, _, _ = ibsi_resample(image, mask, InterpConfig(1.0, "bspline", 1.0, 0.5))
    assert np.all(rounded == np.round(rounded))


def test_no_contour_names_the_patient_and_writes_nothing(tmp_path):
    root = cohort(tmp_path / "src")
    write_patient(root, "p3", seed=2, with_label=False)
    out = tmp_path / "o" / "f.csv"
    with pytest.raises(ChmflError, match=r"^patient p3: no tumour contour"):
        compute_features(root, out, voxel_mm="native")
    assert not out.exists() and not params_file_path(out).exists()


def test_empty_and_outside_masks(tmp_path):
    root = cohort(tmp_path / "src", ids=("p1",))
    write_patient(root, "p4", seed=3, label=np.zeros((16, 24, 24)))
    with pytest.raises(ChmflError, match=r"^patient p4: .*empty or lies outside the CT image"):
        compute_features(root, tmp_path / "o" / "f.csv", voxel_mm="native")


def test_parameter_file_pyradiomics_rejects(tmp_path):
    root = cohort(tmp_path / "src", ids=("p1",))
    doc = yaml.safe_load(load_contour_params.__globals__["default_params_path"]().read_text())
    doc["pet"]["setting"]["binWidth"] = "wide"
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(doc))
    out = tmp_path / "o" / "f.csv"
    with pytest.raises(ChmflError, match=r"bad.yaml, section pet: pyradiomics rejects these settings"):
        compute_features(root, out, params=bad)
    assert not out.exists()


def test_cli_one_line_error_and_exit_code(tmp_path, capsys):
    root = cohort(tmp_path / "src", ids=("p1",))
    write_patient(root, "p3", seed=2, with_label=False)
    rc = main(["features", str(root), "--out", str(tmp_path / "f.csv"), "--voxel-mm", "native"])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and err.count("\n") == 0 and "patient p3" in err
    assert main(["features", str(root), "--out", str(tmp_path / "g.csv"), "--voxel-mm", "nope"]) == 2
    assert "--voxel-mm" in capsys.readouterr().err


def test_two_workers_give_the_same_table(native, tmp_path):
    root, _, res = native
    two = compute_features(root, tmp_path / "f.csv", voxel_mm="native", workers=2)
    pd.testing.assert_frame_equal(two.table, res.table)


def test_default_grids_are_the_ibsi_validation_ones(tmp_path):
    params = load_contour_params()
    assert params.interpolation["ct"] == InterpConfig(1.0, "bspline", 1.0, 0.5)
    assert params.interpolation["pet"] == InterpConfig(3.0, "bspline", None, 0.5)
    assert params.pyradiomics["ct"]["setting"]["resegmentRange"] == [-200, 200]
    assert params.pyradiomics["pet"]["setting"]["binWidth"] == 0.25
    root = cohort(tmp_path / "src", ids=("p1",))
    df = compute_features(root, tmp_path / "f.csv").table.set_index(["modality", "feature"])["value"]
    assert df["CT", "stat_max"] == np.round(df["CT", "stat_max"])  # CT rounded to 1 HU after interpolation
    assert df["PET", "morph_vol_approx"] % 27.0 == pytest.approx(0.0, abs=1e-6)  # 3 mm voxels


def test_shipped_box_settings_file_loads():
    from chmfl.radiomics.contour import default_params_path

    p = load_contour_params(default_params_path().with_name("params_contour_4mm.yaml"))
    assert p.interpolation["ct"] == InterpConfig(4.0, "linear", None, 0.5)
    assert p.pyradiomics["ct"]["setting"]["binWidth"] == 25 and p.hash() != load_contour_params().hash()
