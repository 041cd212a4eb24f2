"""Shared fixtures: the real reference data in ../shared/data (skipped, with the reason, when absent).

Archives are unpacked once into ``$CHMFL_TEST_DATA`` (default: a folder under the system
temp dir) and reused by later runs; nothing is downloaded.
"""

from __future__ import annotations

import os
import tarfile
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("CHMFL_SHARED_DATA", ROOT.parent / "shared" / "data"))
UNPACK = Path(os.environ.get("CHMFL_TEST_DATA", Path(tempfile.gettempdir()) / "chmfl-test-data"))


def _need(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"reference data not found: {path} (../shared/data is absent on this machine)")
    return path


def _unpack(archive: Path, member_root: str) -> Path:
    """Unpack ``archive`` once; ``member_root`` is the top folder it holds."""
    _need(archive)
    out = UNPACK / member_root
    stamp = UNPACK / f".{member_root}.{int(archive.stat().st_mtime)}.{archive.stat().st_size}.done"
    if not stamp.exists():
        UNPACK.mkdir(parents=True, exist_ok=True)
        with tarfile.open(archive, "r:xz") as tar:
            tar.extractall(UNPACK, filter="data")
        stamp.touch()
    return out


@pytest.fixture(scope="session")
def shared_data() -> Path:
    return _need(SHARED)


@pytest.fixture(scope="session")
def sts_dir() -> Path:
    """The 51 STS patients (IBSI layout: STS_xxx/{CT,PET}/{image,mask})."""
    return _unpack(SHARED / "sts-petct-dicom.tar.xz", "sts-petct")


@pytest.fixture(scope="session")
def dro_dir() -> Path:
    """The 17 SUV digital reference objects (DRO_x_y/{PT,RS,mask}) and DRO_list.csv."""
    return _unpack(SHARED / "suv-dro.tar.xz", "suv-dro") / "DRO"


@pytest.fixture(scope="session")
def clinical_xlsx() -> Path:
    return _need(SHARED / "sts-clinical" / "INFOclinical_STS.xlsx")


@pytest.fixture(scope="session")
def ibsi_dir() -> Path:
    return _need(SHARED / "ibsi-phantom")


@pytest.fixture(scope="session")
def pyradiomics_dir() -> Path:
    return _need(SHARED / "pyradiomics-cases")
