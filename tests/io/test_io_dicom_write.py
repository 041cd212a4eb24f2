"""``write_dicom_series``: a CT (HU) and a PET (SUVbw) written with pydicom read back through
chmfl's own DICOM reader with the same values and geometry, and no identifying data."""

from __future__ import annotations

import numpy as np
import pydicom
import pytest

from chmfl.errors import ChmflError
from chmfl.io.dicom_write import StudyIds, write_dicom_series
from chmfl.io.imageio import read_image
from chmfl.io.volume import Volume

ROTATED = (0.0, -1.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 1.0)  # rows along +y, columns along -x


@pytest.mark.parametrize("direction", [(1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0), ROTATED])
def test_ct_and_pet_round_trip(tmp_path, direction):
    rng = np.random.default_rng(0)
    ids = StudyIds("P 7")
    ct = Volume(rng.integers(-1024, 2000, (5, 6, 7)).astype(np.float32), (3.0, 0.8, 0.9), (-10.0, 20.0, -300.0),
                direction)
    pet = Volume(rng.uniform(0.0, 25.0, (5, 3, 4)).astype(np.float32), (3.0, 4.0, 4.5), (-12.0, 18.0, -300.0),
                 direction)
    write_dicom_series(ct, tmp_path / "ct", "CT", ids)
    write_dicom_series(pet, tmp_path / "pet", "PT", ids, series_number=2)
    ct2, pet2 = read_image(tmp_path / "ct"), read_image(tmp_path / "pet")
    np.testing.assert_array_equal(ct2.array, ct.array)
    np.testing.assert_allclose(pet2.array, pet.array, atol=25.0 / 32767)
    for a, b in ((ct, ct2), (pet, pet2)):
        np.testing.assert_allclose(b.spacing, a.spacing, atol=1e-5)
        np.testing.assert_allclose(b.origin, a.origin, atol=1e-3)
        np.testing.assert_allclose(b.direction, a.direction, atol=1e-6)
    assert pet2.meta["units"] == "SUVbw" and ct2.meta["patient_id"] == "P 7"
    assert ct2.meta["frame_of_reference_uid"] == pet2.meta["frame_of_reference_uid"]
    ds = pydicom.dcmread(next((tmp_path / "pet").iterdir()))
    assert ds.PatientName == "P 7" and "PatientBirthDate" not in ds and ds.Units == "GML"


def test_negative_suv_and_unknown_modality_are_refused(tmp_path):
    vol = Volume(np.full((1, 2, 2), -1.0, np.float32), (1.0, 1.0, 1.0), (0.0, 0.0, 0.0))
    with pytest.raises(ChmflError, match="SUV must be >= 0"):
        write_dicom_series(vol, tmp_path / "pet", "PT", StudyIds("P1"))
    with pytest.raises(ChmflError, match="CT or PT"):
        write_dicom_series(vol, tmp_path / "mr", "MR", StudyIds("P1"))
