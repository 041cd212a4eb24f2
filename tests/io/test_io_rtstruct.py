"""RTSTRUCT to mask: pixel-centre semantics, holes, ROI choice, and every refusal."""

from __future__ import annotations

import numpy as np
import pytest
from io_factory import new_ids, square, write_rtstruct
from matplotlib.path import Path as PolygonPath

from chmfl.errors import ChmflError
from chmfl.io.rtstruct import list_rois, read_rtstruct_mask
from chmfl.io.volume import Volume

IDS = {"patient_id": "P1", "study": "1.2.3", "series": "1.2.3.4", "frame": "1.2.3.5"}


def grid(**meta) -> Volume:
    """4 slices of 10 x 12 voxels; voxel centres at x = -5..6, y = -4..5, z = 10, 12, 14, 16."""
    meta = {"frame_of_reference_uid": IDS["frame"], "patient_id": "P1", **meta}
    return Volume(np.zeros((4, 10, 12), np.float32), (2.0, 1.0, 1.0), (-5.0, -4.0, 10.0), meta=meta)


def rs(tmp_path, rois, **kw):
    return write_rtstruct(tmp_path / "rs.dcm", IDS, rois, **kw)


def test_voxel_centres_inside_the_polygon(tmp_path):
    mask = read_rtstruct_mask(rs(tmp_path, {"GTV": [square(-2.5, 1.5, -1.5, 2.5, 12.0)]}), grid())
    expected = np.zeros((4, 10, 12), np.uint8)
    expected[1, 3:7, 3:7] = 1  # x -2..1 -> columns 3..6, y -1..2 -> rows 3..6
    np.testing.assert_array_equal(mask.array, expected)
    assert mask.array.dtype == np.uint8 and mask.meta["roi_name"] == "GTV"
    assert mask.same_grid(grid())


def test_nested_contours_make_holes_and_disjoint_ones_add(tmp_path):
    contours = [square(-4.5, 4.5, -3.5, 4.5, 12.0), square(-1.5, 1.5, -0.5, 1.5, 12.0),
                square(5.5, 6.5, -3.5, -2.5, 12.0)]
    mask = read_rtstruct_mask(rs(tmp_path, {"GTV": contours}), grid()).array[1]
    assert mask[4, 5] == 0 and mask[4, 4] == 0 and mask[1, 1] == 1  # hole at x -1..1, y 0..1
    assert mask.sum() == 9 * 8 - 3 * 2 + 1


def test_sparse_contour_planes_fill_the_slices_between(tmp_path):
    contours = [square(-2.5, 1.5, -1.5, 2.5, z) for z in (10.0, 14.0)]
    mask = read_rtstruct_mask(rs(tmp_path, {"GTV": contours}), grid()).array
    assert [int(m.sum()) for m in mask] == [16, 16, 16, 16]
    single = read_rtstruct_mask(rs(tmp_path, {"GTV": [square(-2.5, 1.5, -1.5, 2.5, 10.0)]}), grid()).array
    assert [int(m.sum()) for m in single] == [16, 0, 0, 0]


def test_star_polygon_matches_an_independent_rasteriser(tmp_path):
    angles = np.linspace(0, 2 * np.pi, 23, endpoint=False)
    radius = np.where(np.arange(23) % 2, 1.7, 4.3) + 0.013
    x, y = 0.37 + radius * np.cos(angles), 0.71 + radius * np.sin(angles)
    data = [float(v) for px, py in zip(x, y) for v in (px, py, 14.0)]
    mask = read_rtstruct_mask(rs(tmp_path, {"GTV": [data]}), grid()).array[2]
    ys, xs = np.mgrid[0:10, 0:12]
    centres = np.column_stack([xs.ravel(), ys.ravel()])
    expected = PolygonPath(np.column_stack([x + 5.0, y + 4.0])).contains_points(centres).reshape(10, 12)
    np.testing.assert_array_equal(mask.astype(bool), expected)
    assert mask.sum() > 10


def test_roi_choice_default_gtv_exact_and_regex(tmp_path):
    path = rs(tmp_path, {"Body": [square(-4.5, 4.5, -3.5, 4.5, 12.0)],
                         "gtv_primary": [square(-2.5, 1.5, -1.5, 2.5, 12.0)],
                         "GTV_node": [square(4.5, 5.5, 3.5, 4.5, 12.0)]})
    assert list_rois(path) == ["Body", "gtv_primary", "GTV_node"]
    assert read_rtstruct_mask(path, grid()).meta["roi_name"] == "gtv_primary"
    assert read_rtstruct_mask(path, grid(), "Body").array.sum() == 72
    assert read_rtstruct_mask(path, grid(), "node$").meta["roi_name"] == "GTV_node"


def _refused(path, reference, roi=None, *words):
    with pytest.raises(ChmflError) as info:
        read_rtstruct_mask(path, reference, roi)
    msg = str(info.value)
    assert "\n" not in msg and str(path) in msg
    for word in words:
        assert word in msg, msg


def test_refusals(tmp_path):
    good = [square(-2.5, 1.5, -1.5, 2.5, 12.0)]
    _refused(rs(tmp_path, {"GTV": good}, frame="9.9.9"), grid(), None, "frame of reference", "9.9.9")
    _refused(rs(tmp_path, {"GTV": good}, patient_id="P2"), grid(), None, "patient", "'P2'", "'P1'")
    _refused(rs(tmp_path, {"Body": good, "Lung": good}), grid(), None, "no ROI matches 'GTV'", "Body", "Lung")
    _refused(rs(tmp_path, {"GTV": good}), grid(), "Liver", "no ROI matches 'Liver'", "['GTV']")
    _refused(rs(tmp_path, {"GTV": good}), grid(), "(", "not a valid regular expression")
    _refused(rs(tmp_path, {"GTV": []}), grid(), None, "no closed planar contours")
    _refused(rs(tmp_path, {"GTV": [square(40, 50, 40, 50, 12.0)]}), grid(), None, "empty mask")
    _refused(rs(tmp_path, {"GTV": [square(-2.2, -2.1, 0.1, 0.2, 12.0)]}), grid(), None, "empty mask")
    oblique = [-2.0, -1.0, 10.0, 2.0, -1.0, 10.0, 2.0, 2.0, 16.0, -2.0, 2.0, 16.0]
    _refused(rs(tmp_path, {"GTV": [oblique]}), grid(), None, "not parallel")
    (tmp_path / "ct.dcm").write_bytes(b"\0" * 400)
    _refused(tmp_path / "ct.dcm", grid(), None, "RTSTRUCT")
    _refused(tmp_path / "missing.dcm", grid(), None, "does not exist")


def test_unknown_image_identity_is_not_checked(tmp_path):
    path = write_rtstruct(tmp_path / "rs.dcm", new_ids("P9"), {"GTV": [square(-2.5, 1.5, -1.5, 2.5, 12.0)]})
    assert read_rtstruct_mask(path, grid(frame_of_reference_uid="", patient_id="")).array.sum() == 16


def test_undeclared_roi_frame_is_accepted_only_when_the_declared_one_is_the_images(tmp_path, caplog):
    import pydicom

    path = rs(tmp_path, {"GTV": [square(-2.5, 1.5, -1.5, 2.5, 12.0)]})
    ds = pydicom.dcmread(path)
    ds.StructureSetROISequence[0].ReferencedFrameOfReferenceUID = "7.7.7"  # as in STS_046
    ds.save_as(path)
    assert read_rtstruct_mask(path, grid()).array.sum() == 16
    assert "7.7.7" in caplog.text
    ds.ReferencedFrameOfReferenceSequence[0].FrameOfReferenceUID = "7.7.7"  # consistent file
    ds.save_as(path)
    _refused(path, grid(), None, "frame of reference 7.7.7")
