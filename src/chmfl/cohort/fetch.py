"""``chmfl data fetch sts``: the public STS cohort (IBSI release) and its TCIA clinical sheet.

From a local copy (``--from``: a folder holding ``sts-petct-dicom.tar.xz`` and
``sts-clinical/INFOclinical_STS.xlsx``, or the archive itself) nothing touches the network;
without it the files are downloaded. Every file is checked against the SHA-256 recorded
here, and the unpacked DICOM tree against ``TREE_SHA256`` (the same digest whichever way the
files came), so a download and a local copy give byte-identical cohorts.

Result::

    DIR/sts-petct/STS_xxx/{CT,PET}/{image,mask}     the 51 patients (layout "ibsi")
    DIR/sts-clinical/INFOclinical_STS.xlsx          outcomes (labels)
"""

from __future__ import annotations

import hashlib
import logging
import shutil
import tarfile
import tempfile
import urllib.request
import zipfile
from pathlib import Path

from chmfl.errors import ChmflError
from chmfl.fsutil import atomic_dir, atomic_path

log = logging.getLogger(__name__)

ARCHIVE_NAME = "sts-petct-dicom.tar.xz"
CLINICAL_NAME = "INFOclinical_STS.xlsx"
SHA256 = {
    ARCHIVE_NAME: "bf959a64574c9fcd2ed60f089a66f1ee55d35e218dbfaac05d2114e8ee6e4eac",
    CLINICAL_NAME: "803a63af880cb82dcc35f8dedd7369f0b160396a9b55e5675450cd3c744391ce",
}
# Digest of the unpacked sts-petct/ tree: sha256 over "relative/path sha256-of-file" lines.
TREE_SHA256 = "b3483d160ed6ebca34edc5208196b489d01e5a8791c33d914ec1fcce9f16b0e2"
# Public sources (used only without --from; never in tests). The IBSI repository holds the
# DICOM files under ibsi_1_validation/dicom/STS_xxx/{CT,PET,MR_T1}; CT and PET are kept.
IBSI_ZIP_URL = "https://github.com/theibsi/data_sets/archive/refs/heads/master.zip"
IBSI_DICOM_PREFIX = "ibsi_1_validation/dicom/"
CLINICAL_URL = "https://wiki.cancerimagingarchive.net/download/attachments/21266533/INFOclinical_STS.xlsx"
DATASETS = ("sts",)


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def tree_digest(root: Path) -> str:
    """SHA-256 over the sorted "relative path, file SHA-256" lines of every file in ``root``."""
    h = hashlib.sha256()
    for f in sorted(p for p in Path(root).rglob("*") if p.is_file()):
        h.update(f"{f.relative_to(root).as_posix()} {sha256_file(f)}\n".encode())
    return h.hexdigest()


def verify(path: Path, name: str) -> None:
    """Raise a ChmflError unless ``path`` has the SHA-256 recorded for ``name``."""
    got = sha256_file(path)
    if got != SHA256[name]:
        raise ChmflError(f"checksum mismatch for {path}: sha256 {got[:16]}..., expected {SHA256[name][:16]}...")


def _verify_tree(root: Path) -> None:
    got = tree_digest(root)
    if got != TREE_SHA256:
        raise ChmflError(f"the unpacked cohort {root} differs from the release (tree digest {got[:16]}...)")


def _local_file(src: Path, name: str, subdir: str) -> Path:
    """``name`` given as ``src`` itself, or in ``src`` (or beside the file ``src``) or its ``subdir``."""
    base = src if src.is_dir() else src.parent
    for cand in (src, base / name, base / subdir / name):
        if cand.is_file() and cand.name == name:
            return cand
    raise ChmflError(f"{name} not found in {src} (looked for {name} and {subdir}/{name})")


def _unpack_archive(archive: Path, dest: Path) -> None:
    """Unpack ``sts-petct/`` from the tar.xz into ``dest`` (atomically)."""
    verify(archive, ARCHIVE_NAME)
    with atomic_dir(dest) as tmp, tarfile.open(archive, "r:xz") as tar:
        members = [m for m in tar.getmembers() if m.name.startswith("sts-petct/")]
        if not members:
            raise ChmflError(f"{archive} holds no sts-petct/ folder")
        tar.extractall(tmp, members=members, filter="data")
        for item in (tmp / "sts-petct").iterdir():
            item.rename(tmp / item.name)
        (tmp / "sts-petct").rmdir()
        _verify_tree(tmp)


def _download(url: str, target: Path) -> None:
    log.info("downloading %s", url)
    with atomic_path(target) as tmp, urllib.request.urlopen(url, timeout=60) as resp:  # noqa: S310
        with open(tmp, "wb") as fh:
            shutil.copyfileobj(resp, fh)


def _download_ibsi(dest: Path) -> None:
    """The IBSI repository zip -> the CT and PET folders of every STS patient."""
    with tempfile.TemporaryDirectory() as td:
        zpath = Path(td) / "ibsi.zip"
        _download(IBSI_ZIP_URL, zpath)
        with atomic_dir(dest) as tmp, zipfile.ZipFile(zpath) as zf:
            for name in zf.namelist():
                rel = name.split("/", 1)[-1]
                parts = rel[len(IBSI_DICOM_PREFIX):].split("/") if rel.startswith(IBSI_DICOM_PREFIX) else []
                if len(parts) >= 4 and parts[1] in ("CT", "PET") and not name.endswith("/"):
                    out = tmp.joinpath(*parts)
                    out.parent.mkdir(parents=True, exist_ok=True)
                    out.write_bytes(zf.read(name))
            _verify_tree(tmp)


def fetch_sts(to: str | Path, local: str | Path | None = None) -> dict[str, Path]:
    """Put the 51-patient cohort and the clinical sheet under ``to``; returns their paths."""
    if local is None:
        log.info("no --from given: downloading from %s and %s", IBSI_ZIP_URL, CLINICAL_URL)
    to = Path(to)
    images, sheet = to / "sts-petct", to / "sts-clinical" / CLINICAL_NAME
    if images.is_dir() and any(images.iterdir()):
        log.info("%s exists: kept (delete it to fetch again)", images)
    elif local is not None:
        _unpack_archive(_local_file(Path(local), ARCHIVE_NAME, "."), images)
    else:
        _download_ibsi(images)
    if not sheet.is_file():
        if local is not None:
            src = _local_file(Path(local), CLINICAL_NAME, "sts-clinical")
            verify(src, CLINICAL_NAME)
            with atomic_path(sheet) as tmp:
                shutil.copyfile(src, tmp)
        else:
            _download(CLINICAL_URL, sheet)
    verify(sheet, CLINICAL_NAME)
    return {"images": images, "clinical": sheet}


def fetch(dataset: str, to: str | Path, local: str | Path | None = None) -> dict[str, Path]:
    """Fetch a named public dataset (only "sts" so far)."""
    if dataset != "sts":
        raise ChmflError(f"unknown dataset '{dataset}'; known: {', '.join(DATASETS)}")
    return fetch_sts(to, local)
