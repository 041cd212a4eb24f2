"""All 51 STS patients (slow): every CT and PET series reads, and the CT contour on the CT
grid and the PET contour on the PET grid give roughly the same tumour volume."""

from __future__ import annotations

import numpy as np
import pytest

from chmfl.io.dicom import read_dicom_series
from chmfl.io.rtstruct import read_rtstruct_mask


@pytest.mark.slow
def test_every_patient_ct_and_pet_masks_agree(sts_dir):
    rows = []
    for patient in sorted(p for p in sts_dir.iterdir() if p.name.startswith("STS_")):
        volumes = {}
        for modality, roi in (("CT", "GTV_Mass_CT"), ("PET", "GTV_Mass_PET")):
            image = read_dicom_series(patient / modality / "image")
            mask = read_rtstruct_mask(patient / modality / "mask" / "RS.dcm", image, roi)
            volumes[modality] = mask.array.sum() * np.prod(image.spacing) / 1000.0
            assert image.meta["units"] == ("HU" if modality == "CT" else "SUVbw")
        rows.append((patient.name, volumes["CT"], volumes["PET"]))
        print(f"{patient.name}: CT {volumes['CT']:.1f} mL, PET {volumes['PET']:.1f} mL")
    assert len(rows) == 51
    ratios = np.array([pet / ct for _, ct, pet in rows])
    assert np.all(np.abs(ratios - 1) < 0.05), rows  # measured: within 1.9 %
