"""``chmfl data fetch sts --from LOCAL``: unpack + verify, never the network."""

from __future__ import annotations

import tarfile

import pytest

from chmfl.cli.main import main
from chmfl.cohort import fetch as fetch_mod
from chmfl.errors import ChmflError


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    """Every test here fails loudly if anything tries to download."""
    monkeypatch.setattr(fetch_mod.urllib.request, "urlopen", _no_network)


@pytest.fixture
def local_copy(tmp_path, monkeypatch):
    """A miniature release (archive + sheet) whose checksums replace the recorded ones."""
    src = tmp_path / "release"
    tree = src / "build" / "sts-petct" / "STS_001" / "CT" / "image"
    tree.mkdir(parents=True)
    (tree / "000000.dcm").write_bytes(b"\0" * 128 + b"DICM fake slice")
    archive = src / fetch_mod.ARCHIVE_NAME
    with tarfile.open(archive, "w:xz") as tar:
        tar.add(src / "build" / "sts-petct", arcname="sts-petct")
    sheet = src / "sts-clinical" / fetch_mod.CLINICAL_NAME
    sheet.parent.mkdir()
    sheet.write_bytes(b"not really a spreadsheet")
    monkeypatch.setattr(fetch_mod, "SHA256", {fetch_mod.ARCHIVE_NAME: fetch_mod.sha256_file(archive),
                                              fetch_mod.CLINICAL_NAME: fetch_mod.sha256_file(sheet)})
    monkeypatch.setattr(fetch_mod, "TREE_SHA256", fetch_mod.tree_digest(src / "build" / "sts-petct"))
    return src


def _no_network(*args, **kwargs):
    raise AssertionError("the network must not be used")


def test_fetch_from_local_copy(local_copy, tmp_path, capsys):
    dest = tmp_path / "data"
    assert main(["data", "fetch", "sts", "--to", str(dest), "--from", str(local_copy)]) == 0
    assert (dest / "sts-petct" / "STS_001" / "CT" / "image" / "000000.dcm").is_file()
    assert (dest / "sts-clinical" / fetch_mod.CLINICAL_NAME).is_file()
    assert "sts-petct" in capsys.readouterr().out
    # a second fetch keeps what is there; --from may also name the archive itself
    assert main(["data", "fetch", "sts", "--to", str(dest), "--from", str(local_copy)]) == 0
    other = tmp_path / "data2"
    assert main(["data", "fetch", "sts", "--to", str(other), "--from",
                 str(local_copy / fetch_mod.ARCHIVE_NAME)]) == 0
    assert (other / "sts-clinical" / fetch_mod.CLINICAL_NAME).is_file()


def test_checksum_mismatch_leaves_nothing(local_copy, tmp_path, monkeypatch):
    monkeypatch.setitem(fetch_mod.SHA256, fetch_mod.ARCHIVE_NAME, "0" * 64)
    dest = tmp_path / "data"
    with pytest.raises(ChmflError, match="checksum mismatch"):
        fetch_mod.fetch_sts(dest, local_copy)
    assert not (dest / "sts-petct").exists()


def test_tree_mismatch_leaves_nothing(local_copy, tmp_path, monkeypatch):
    monkeypatch.setattr(fetch_mod, "TREE_SHA256", "f" * 64)
    with pytest.raises(ChmflError, match="differs from the release"):
        fetch_mod.fetch_sts(tmp_path / "data", local_copy)
    assert not (tmp_path / "data" / "sts-petct").exists()


def test_missing_local_files(tmp_path):
    with pytest.raises(ChmflError, match="sts-petct-dicom.tar.xz not found"):
        fetch_mod.fetch_sts(tmp_path / "data", tmp_path)
    with pytest.raises(ChmflError, match="unknown dataset"):
        fetch_mod.fetch("lung", tmp_path)


def test_recorded_checksums_match_the_shared_release(shared_data, sts_dir):
    fetch_mod.verify(shared_data / fetch_mod.ARCHIVE_NAME, fetch_mod.ARCHIVE_NAME)
    fetch_mod.verify(shared_data / "sts-clinical" / fetch_mod.CLINICAL_NAME, fetch_mod.CLINICAL_NAME)
    assert fetch_mod.tree_digest(sts_dir) == fetch_mod.TREE_SHA256


@pytest.mark.slow
def test_fetch_real_release_from_shared_data(shared_data, tmp_path):
    paths = fetch_mod.fetch_sts(tmp_path / "data", shared_data)
    assert len(list(paths["images"].iterdir())) == 51
    assert paths["clinical"].name == fetch_mod.CLINICAL_NAME
