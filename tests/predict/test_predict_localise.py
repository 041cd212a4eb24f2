"""``chmfl predict`` without a contour on whole-body-like studies (``chmfl.synth``): the box
goes on the tumour, or the command refuses in one line, listing the candidates and how to
choose, and writes nothing; ``--center X Y Z`` and ``--search-box`` are honoured."""

from __future__ import annotations

import json

import numpy as np
import pytest

from chmfl.cli.main import main
from chmfl.io.imageio import write_image
from chmfl.synth.phantom import Shape
from chmfl.synth.wholebody import tiny_study, write_study

THIGH, OTHER = (95.0, 5.0, -200.0), (-95.0, 5.0, -230.0)


@pytest.fixture(scope="module")
def twins(tmp_path_factory):
    """Two equally avid tumours, one in each thigh, as NIfTI files."""
    twin = Shape("tumour:6.0", "ellipsoid", OTHER, (25.0, 25.0, 25.0))
    study = tiny_study(THIGH, tumour_suv=6.0, pet_mm=8.0, ct_mm=4.0, extra=(twin,))
    root = tmp_path_factory.mktemp("twins")
    return write_image(study.ct, root / "ct.nii.gz"), write_image(study.pet, root / "pet.nii.gz")


def _predict(model, ct, pet, out, *extra):
    return main(["predict", "--model", str(model), "--pet", str(pet), "--ct", str(ct), "--out", str(out), *extra])


def test_ambiguous_whole_body_dicom_study_is_refused_in_one_line(model_dir, tmp_path, capsys):
    twin = Shape("tumour:6.0", "ellipsoid", OTHER, (25.0, 25.0, 25.0))
    study = tiny_study(THIGH, tumour_suv=6.0, pet_mm=8.0, ct_mm=4.0, z_range=(-450.0, 300.0), extra=(twin,))
    ct_dir, pet_dir = write_study(study, tmp_path / "dicom", "WB1")
    out = tmp_path / "pred"
    capsys.readouterr()
    assert _predict(model_dir, ct_dir, pet_dir, out) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "WB1: cannot place the box without a contour" in err
    assert "not clearly better" in err and err.count("SUVmax") >= 2 and " ml" in err
    assert "(95, 5, -200) mm" in err or "(96, 5, -200) mm" in err or "(95, 6, -200) mm" in err
    assert "--center X Y Z" in err and "--search-box XMIN XMAX YMIN YMAX ZMIN ZMAX" in err
    assert not out.exists()


def test_search_box_and_centre_are_honoured(model_dir, twins, tmp_path):
    ct, pet = twins
    out = tmp_path / "box"
    assert _predict(model_dir, ct, pet, out, "--search-box", "0", "200", "-100", "100", "-300", "-100") == 0
    rec = json.loads((out / "prediction.json").read_text())
    pre = rec["preprocessing"]
    assert pre["center_method"] == "hotspot" and np.linalg.norm(np.subtract(pre["center_xyz_mm"], THIGH)) < 10
    loc = pre["localisation"]
    assert loc["decision"] == "chosen" and loc["search_box"] == [0, 200, -100, 100, -300, -100]
    assert loc["candidates"][0]["suv_max"] > 5 and "score" in loc["candidates"][0]
    assert 0.0 <= rec["probability"] <= 1.0
    out = tmp_path / "centre"
    assert _predict(model_dir, ct, pet, out, "--center", "-95", "5", "-230") == 0
    pre = json.loads((out / "prediction.json").read_text())["preprocessing"]
    assert pre["center_method"] == "given" and pre["center_xyz_mm"] == [-95.0, 5.0, -230.0]
    assert pre["localisation"] is None


def test_no_prediction_on_padding_or_outside_the_ct(model_dir, tmp_path, capsys):
    study = tiny_study(THIGH, tumour_suv=8.0, pet_mm=8.0, ct_mm=4.0, z_range=(-450.0, 300.0),
                       ct_z_range=(-60.0, 300.0))  # the CT misses the thigh tumour
    ct, pet = write_image(study.ct, tmp_path / "ct.nii.gz"), write_image(study.pet, tmp_path / "pet.nii.gz")
    capsys.readouterr()
    assert _predict(model_dir, ct, pet, tmp_path / "a") == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "cannot place the box" in err and not (tmp_path / "a").exists()
    assert _predict(model_dir, ct, pet, tmp_path / "b", "--center", "95,5,-200") == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "outside the CT" in err and "no prediction is made on padding" in err
    assert not (tmp_path / "b").exists()


def test_centre_and_search_box_arguments_are_checked(model_dir, twins, tmp_path, capsys):
    ct, pet = twins
    assert _predict(model_dir, ct, pet, tmp_path / "a", "--center", "1", "2") == 2
    assert "--center takes X Y Z" in capsys.readouterr().err
    assert _predict(model_dir, ct, pet, tmp_path / "b", "--search-box", "5", "0", "0", "1", "0", "1") == 2
    assert "XMIN XMAX YMIN YMAX ZMIN ZMAX" in capsys.readouterr().err
    assert _predict(model_dir, ct, pet, tmp_path / "c", "--center", "1", "2", "3",
                    "--search-box", "0", "1", "0", "1", "0", "1") == 2
    assert "at most one of" in capsys.readouterr().err
