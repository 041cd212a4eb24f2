"""Image files: NIfTI/NRRD/MHA round trips, refusals, atomic writes, pyradiomics' own NRRD cases."""

from __future__ import annotations

import csv

import numpy as np
import pytest
import SimpleITK as sitk

from chmfl.errors import ChmflError
from chmfl.io.imageio import read_image, write_image
from chmfl.io.volume import Volume


def _volume(dtype=np.float32) -> Volume:
    rng = np.random.default_rng(1)
    d = np.array([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])  # rotated about z
    return Volume(rng.normal(size=(5, 7, 6)).astype(dtype), (2.5, 0.8, 0.9), (10.0, -20.0, 30.5),
                  tuple(d.ravel()))


@pytest.mark.parametrize("suffix", [".nii.gz", ".nii", ".nrrd", ".mha"])
def test_round_trip_keeps_pixels_and_geometry(tmp_path, suffix):
    vol = _volume()
    path = write_image(vol, tmp_path / f"img{suffix}")
    back = read_image(path)
    np.testing.assert_array_equal(back.array, vol.array)
    assert back.same_grid(vol, atol=1e-4)
    assert [p.name for p in tmp_path.iterdir()] == [f"img{suffix}"]  # no temporaries left


def test_masks_and_bools_are_written_as_uint8(tmp_path):
    vol = _volume()
    mask = vol.with_array(vol.array > 0)
    back = read_image(write_image(mask, tmp_path / "m.nii.gz"))
    assert back.array.dtype == np.uint8 and back.array.sum() == (vol.array > 0).sum()


def test_refuses_nan_and_inf_naming_the_file(tmp_path):
    for bad in (np.nan, np.inf):
        arr = np.zeros((4, 4, 4), np.float32)
        arr[1, 2, 3] = bad
        path = tmp_path / "bad.nii.gz"
        sitk.WriteImage(sitk.GetImageFromArray(arr), str(path))
        with pytest.raises(ChmflError, match=r"bad\.nii\.gz: 1 NaN/infinite voxel\(s\), first at \(z, y, x\) \(1, 2, 3\)"):
            read_image(path)
    with pytest.raises(ChmflError, match="NaN"):
        write_image(Volume(arr, (1, 1, 1), (0, 0, 0)), tmp_path / "out.nii.gz")
    assert not (tmp_path / "out.nii.gz").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.nii.gz"]


def test_refuses_truncated_unknown_and_non_3d_files(tmp_path):
    path = write_image(_volume(), tmp_path / "img.nii.gz")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ChmflError, match="img.nii.gz: unreadable or truncated"):
        read_image(path)
    (tmp_path / "x.png").write_bytes(b"png")
    with pytest.raises(ChmflError, match="unsupported format"):
        read_image(tmp_path / "x.png")
    with pytest.raises(ChmflError, match="does not exist"):
        read_image(tmp_path / "none.nii.gz")
    sitk.WriteImage(sitk.GetImageFromArray(np.zeros((5, 6), np.float32)), str(tmp_path / "flat.nii.gz"))
    with pytest.raises(ChmflError, match="2D image"):
        read_image(tmp_path / "flat.nii.gz")
    with pytest.raises(ChmflError, match="unsupported format"):
        write_image(_volume(), tmp_path / "img.nhdr")  # detached data cannot be renamed atomically


def _baseline(pyradiomics_dir, name: str, column: str) -> dict:
    with open(pyradiomics_dir / "baseline" / name, newline="") as fh:
        rows = list(csv.reader(fh))
    col = rows[0].index(column)
    return {r[0]: r[col] for r in rows[1:]}


def test_pyradiomics_brain1_nrrd_matches_its_baseline(pyradiomics_dir):
    """Column 'brain1' (no resampling, no normalisation): the original grid."""
    image = read_image(pyradiomics_dir / "brain1_image.nrrd")
    label = read_image(pyradiomics_dir / "brain1_label.nrrd")
    first = _baseline(pyradiomics_dir, "baseline_firstorder.csv", "brain1")
    shape = _baseline(pyradiomics_dir, "baseline_shape.csv", "brain1")
    assert image.same_grid(label)
    assert tuple(reversed(image.spacing)) == pytest.approx(eval(first["diagnostics_Image-original_Spacing"]))
    roi = label.array == 1
    assert int(roi.sum()) == int(first["diagnostics_Mask-original_VoxelNum"]) == 4137
    values = image.array[roi].astype(float)
    assert values.mean() == pytest.approx(float(first["original_firstorder_Mean"]), rel=1e-9)
    assert values.max() == float(first["original_firstorder_Maximum"])
    assert values.min() == float(first["original_firstorder_Minimum"])
    voxel_ml = roi.sum() * np.prod(image.spacing)
    assert voxel_ml == pytest.approx(float(shape["original_shape_VoxelVolume"]), rel=1e-9)
    zyx = np.argwhere(roi)
    x0, y0, z0, nx, ny, nz = eval(first["diagnostics_Mask-original_BoundingBox"])
    assert (x0, y0, z0) == tuple(zyx.min(axis=0)[::-1])
    assert (nx, ny, nz) == tuple((zyx.max(axis=0) - zyx.min(axis=0) + 1)[::-1])
