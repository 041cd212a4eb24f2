"""The demo copy of the real cohort shipped in the package (``chmfl/demo_data``).

``make_bundle`` runs chmfl's own ``prepare`` on the 51 STS patients at 4 mm with float16
images and adds the licence and citations, so a fresh install can run the whole pipeline
(``load_cases(demo_cache_dir())``) without downloading anything. A test checks that the
bundle equals a fresh prepare of the same patients.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import yaml

from chmfl.fsutil import atomic_dir
from chmfl.preprocess.config import IntensityConfig, PrepareConfig
from chmfl.preprocess.prepare import PrepareResult, prepare_cohort

# 4 mm, float16, storage steps 16x the cache's (CT 1 HU, SUV and inputs 1/16): about 5 MB.
# Network inputs use the fixed "window" intensities, which keep absolute SUV and HU: with the
# paper's per-volume standardisation + contrast normalisation the absolute uptake (SUVmax,
# the strongest single predictor here) is normalised away (docs/training.md). The raw SUV/HU
# arrays are in the bundle too, so either can be studied.
BUNDLE_CONFIG = PrepareConfig(voxel_mm=4.0, dtype="float16", quantize=16.0,
                              intensity=IntensityConfig(mode="window"))

LICENSE_TEXT = """\
chmfl demo data: the 51 patients of the TCIA Soft-tissue-Sarcoma collection, as released by
the Image Biomarker Standardisation Initiative (IBSI validation set), preprocessed by chmfl's
own 'chmfl data prepare' at 4 mm voxels (float16; CT rounded to 1 HU, SUV and network
inputs to 1/16; network inputs with fixed-window intensities): PET (SUVbw) and CT (HU) in
the 112 x 112 x 144 mm box around the CT tumour contour, the contour itself, the same box
placed without the contour by chmfl's localiser (where it finds the tumour), and the outcome
labels, scan offsets and clinical covariates (age, grade, MSKCC histology type) from the TCIA
clinical sheet (no names, birth dates or addresses).

Licence: Creative Commons Attribution 3.0 Unported (CC BY 3.0),
https://creativecommons.org/licenses/by/3.0/ . Changes: converted to SUV and cropped (IBSI),
resampled, cropped to a box and intensity-normalised (chmfl).

Please cite:
* Vallieres M, Freeman CR, Skamene SR, El Naqa I. A radiomics model from joint FDG-PET and MRI
  texture features for the prediction of lung metastases in soft-tissue sarcomas of the
  extremities. Phys. Med. Biol. 2015;60(14):5471-5496. doi:10.1088/0031-9155/60/14/5471
* Vallieres M, Freeman CR, Skamene SR, El Naqa I. (2015). Data from: A radiomics model from
  joint FDG-PET and MRI texture features for the prediction of lung metastases in soft-tissue
  sarcomas of the extremities. The Cancer Imaging Archive. doi:10.7937/K9/TCIA.2015.7GO2GSKS
* Clark K, Vendt B, Smith K, et al. The Cancer Imaging Archive (TCIA): maintaining and
  operating a public information repository. J. Digit. Imaging 2013;26(6):1045-1057.
  doi:10.1007/s10278-013-9622-7
* Zwanenburg A, et al. The Image Biomarker Standardization Initiative. Radiology
  2020;295(2):328-338 (the IBSI release of these images).
"""


def demo_cache_dir() -> Path:
    """The bundled demo cache (a folder ``load_cases`` reads)."""
    return Path(str(resources.files("chmfl") / "demo_data"))


def make_bundle(
    source: str | Path,
    clinical: str | Path,
    out: str | Path,
    workers: int = 1,
    progress: bool = True,
    config: PrepareConfig = BUNDLE_CONFIG,
) -> PrepareResult:
    """Prepare ``source`` into ``out`` (replaced atomically) with the licence/citation file."""
    out = Path(out)
    with atomic_dir(out) as tmp:
        result = prepare_cohort(source, tmp, clinical, config, workers=workers, progress=progress,
                                compresslevel=9)
        cfg_path = tmp / "prepare_config.yaml"
        doc = yaml.safe_load(cfg_path.read_text())
        # Keep machine-local paths out of the package: record names only.
        doc["source"] = Path(str(doc["source"])).name
        doc["clinical"] = Path(str(doc["clinical"])).name if doc.get("clinical") else None
        cfg_path.write_text(yaml.safe_dump(doc, sort_keys=False))
        (tmp / "LICENSE.txt").write_text(LICENSE_TEXT)
    result.cache_dir = out
    return result
