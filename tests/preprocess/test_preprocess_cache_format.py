"""``save_case`` / ``load_case``: every compression level reads back the same arrays."""

from __future__ import annotations

import numpy as np
import pytest

from chmfl.preprocess.cache_format import CaseArrays, load_case, save_case


@pytest.mark.parametrize("level", [0, 1, 9])
def test_round_trip(tmp_path, level):
    rng = np.random.default_rng(level)
    img = rng.normal(size=(6, 5, 4)).astype(np.float32)
    case = CaseArrays("P1", img, img * 2, img * 100, np.abs(img), (img > 0).astype(np.uint8),
                      (2.0, 2.0, 2.0), (1.0, 2.0, 3.0), center=(4.0, 5.0, 6.0), meta={"k": 1})
    save_case(tmp_path / "P1.npz", case, compresslevel=level)
    back = load_case(tmp_path / "P1.npz")
    for key in ("ct", "pet", "ct_hu", "pet_suv", "mask"):
        np.testing.assert_array_equal(getattr(back, key), getattr(case, key))
    assert back.origin == case.origin and back.center == case.center and back.meta["k"] == 1
    assert not list(tmp_path.glob(".*"))  # no temporary file left
