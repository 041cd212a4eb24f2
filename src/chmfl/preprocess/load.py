"""Reading one ``Case`` into Volumes (CT in HU, PET in SUV, the chosen tumour mask).

The only place in ``preprocess`` that touches files, through ``chmfl.io``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from chmfl.cohort.case import Case, MaskSource
from chmfl.errors import ChmflError
from chmfl.io.volume import Volume
from chmfl.preprocess.config import PrepareConfig


def read_modality(path: Path, suv: str = "bw", modality: str | None = None) -> Volume:
    """A DICOM series folder (PET converted to SUV) or an image file (PET assumed SUV);
    with ``modality`` ("ct" | "pet"), refused when it cannot be that image
    (``io.validate.read_as``: DICOM Modality tag, units, value ranges)."""
    from chmfl.io.validate import read_as

    return read_as(path, modality, f"{(modality or 'image').upper()} {path}", suv=suv)


def read_mask(source: MaskSource, reference: Volume, roi: str | None = None) -> Volume:
    """The tumour mask (uint8 {0, 1}) on ``reference``'s grid (RTSTRUCT) or its own (label)."""
    if source.kind == "rtstruct":
        from chmfl.io.rtstruct import read_rtstruct_mask

        mask = read_rtstruct_mask(source.path, reference, roi=roi or source.roi)
    else:
        from chmfl.io.imageio import read_image

        mask = read_image(source.path)
    arr = np.asarray(mask.array)
    if arr.dtype.kind == "f" and not np.isfinite(arr).all():
        raise ChmflError(f"mask {source.path} has NaN/inf voxels")
    return mask.with_array((arr > 0).astype(np.uint8))


def load_case_volumes(case: Case, config: PrepareConfig) -> tuple[Volume, Volume, Volume | None]:
    """(CT, PET, mask or None) of ``case``; the mask drawn on ``config.mask_from`` if present."""
    from chmfl.io.validate import check_distinct, check_pair

    check_distinct(case.ct, case.pet, f"CT {case.ct}", f"PET {case.pet}")
    ct = read_modality(case.ct, config.suv, "ct")
    pet = read_modality(case.pet, config.suv, "pet")
    check_pair(ct, pet, f"CT {case.ct}", f"PET {case.pet}")
    source = case.mask_for(config.mask_from)
    if source is None:
        return ct, pet, None
    reference = pet if source.drawn_on == "pet" else ct
    return ct, pet, read_mask(source, reference, config.roi)
