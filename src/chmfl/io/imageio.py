"""Read and write image files: NIfTI (.nii, .nii.gz), NRRD (.nrrd, .nhdr), MetaImage (.mha),
or a DICOM series folder (read only, through ``dicom.read_dicom_series``).

Reading refuses (ChmflError naming the file) unreadable or truncated files, images that
are not 3D scalar images, and images holding NaN or infinite values. NIfTI files are
checked on their raw data first, because the NIfTI reader of ITK silently zero-fills
truncated data and replaces NaN/inf with 0. Writing is atomic
(temporary sibling renamed on success) and supports single-file formats only.
"""

from __future__ import annotations

import gzip
import os
import struct
import zlib
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from chmfl.errors import ChmflError
from chmfl.fsutil import atomic_path
from chmfl.io.volume import Volume

READ_SUFFIXES = (".nii", ".nii.gz", ".nrrd", ".nhdr", ".mha")
SLICE_SUFFIXES = (".png", ".nii", ".nii.gz")  # one 2D slice per file (``read_slice``)
WRITE_SUFFIXES = (".nii", ".nii.gz", ".nrrd", ".mha")


def _suffix(path: Path) -> str:
    name = path.name.lower()
    return ".nii.gz" if name.endswith(".nii.gz") else path.suffix.lower()


def read_image(path: str | os.PathLike, *, suv: str = "bw", overrides: dict | None = None) -> Volume:
    """An image file or DICOM series folder as a Volume (PET series in SUV ``suv``).

    ``suv`` and ``overrides`` apply to DICOM PET series only (see ``read_dicom_series``).
    """
    path = Path(path)
    if path.is_dir():
        from chmfl.io.dicom import read_dicom_series

        return read_dicom_series(path, suv=suv, overrides=overrides)
    if not path.exists():
        raise ChmflError(f"image {path}: file does not exist")
    if _suffix(path) not in READ_SUFFIXES:
        raise ChmflError(f"image {path}: unsupported format (read: {', '.join(READ_SUFFIXES)} "
                         "or a DICOM series folder)")
    if _suffix(path) in (".nii", ".nii.gz"):
        check_nifti_data(path)
    try:
        img = sitk.ReadImage(str(path))
    except RuntimeError as exc:
        msg = str(exc).strip().splitlines()
        detail = next((ln.strip() for ln in msg if "rror" in ln or "xception" in ln), msg[-1] if msg else "")
        raise ChmflError(f"image {path}: unreadable or truncated ({detail[:160]})") from None
    if img.GetNumberOfComponentsPerPixel() != 1:
        raise ChmflError(f"image {path}: {img.GetNumberOfComponentsPerPixel()} components per voxel; "
                         "a scalar image is needed")
    if img.GetDimension() == 4 and img.GetSize()[3] == 1:
        img = img[:, :, :, 0]
    if img.GetDimension() != 3:
        raise ChmflError(f"image {path}: {img.GetDimension()}D image of size {img.GetSize()}; a 3D image is needed")
    volume = Volume.from_sitk(img, meta={"source": str(path)})
    check_finite(volume.array, f"image {path}")
    return volume


def read_slice(path: str | os.PathLike) -> Volume:
    """One 2D image file (PNG, or a NIfTI holding one slice) as a one-slice Volume (1, H, W).

    A PNG must be a single-channel (grey) image; its values are returned as stored (8-bit
    grey levels) with spacing 1 mm, as PNG carries no geometry. A NIfTI slice keeps its values
    and in-plane spacing; the z spacing of a single slice is set to 1 mm."""
    path = Path(path)
    if _suffix(path) not in SLICE_SUFFIXES:
        raise ChmflError(f"slice {path}: unsupported format (read: {', '.join(SLICE_SUFFIXES)})")
    if not path.is_file():
        raise ChmflError(f"slice {path}: file does not exist")
    if _suffix(path) in (".nii", ".nii.gz"):
        check_nifti_data(path)
    try:
        img = sitk.ReadImage(str(path))
    except RuntimeError:
        raise ChmflError(f"slice {path}: unreadable or truncated") from None
    if img.GetNumberOfComponentsPerPixel() != 1:
        raise ChmflError(f"slice {path}: {img.GetNumberOfComponentsPerPixel()} channels; a grey image is needed")
    if img.GetDimension() == 3 and img.GetSize()[2] == 1:
        img = img[:, :, 0]
    if img.GetDimension() != 2:
        raise ChmflError(f"slice {path}: image of size {img.GetSize()}; one 2D slice is needed")
    array = sitk.GetArrayFromImage(img)[None]  # (1, H, W)
    check_finite(array, f"slice {path}")
    sy, sx = img.GetSpacing()[::-1]
    return Volume(array, (1.0, float(sy), float(sx)), (0.0, 0.0, 0.0), meta={"source": str(path)})


def check_finite(array: np.ndarray, where: str) -> None:
    """Refuse arrays holding NaN or infinite values (they poison every later statistic)."""
    if np.issubdtype(array.dtype, np.floating):
        bad = ~np.isfinite(array)
        if bad.any():
            first = tuple(int(i) for i in np.argwhere(bad)[0])
            raise ChmflError(f"{where}: {int(bad.sum())} NaN/infinite voxel(s), first at (z, y, x) {first}")


def write_image(volume: Volume, path: str | os.PathLike) -> Path:
    """Write ``volume`` to ``path`` atomically (format from the suffix); returns the path."""
    path = Path(path)
    with atomic_path(path) as tmp:
        write_image_now(volume, tmp, shown=path)
    return path


def write_image_now(volume: Volume, path: str | os.PathLike, *, shown: Path | None = None) -> None:
    """Write without the atomic rename (for callers that manage temporaries themselves)."""
    path = Path(path)
    shown = shown or path
    if _suffix(shown) not in WRITE_SUFFIXES:
        raise ChmflError(f"output {shown}: unsupported format (write: {', '.join(WRITE_SUFFIXES)})")
    array = volume.array
    if array.dtype == bool:
        array = array.astype(np.uint8)
    check_finite(array, f"output {shown}")
    img = Volume(array, volume.spacing, volume.origin, volume.direction).to_sitk()
    try:
        sitk.WriteImage(img, str(path), useCompression=_suffix(shown) != ".nii")
    except RuntimeError as exc:
        raise ChmflError(f"output {shown}: cannot write ({str(exc).strip().splitlines()[-1][:160]})") from None


_NIFTI_FLOATS = {16: "f4", 64: "f8"}


def check_nifti_data(path: Path) -> None:
    """Refuse a NIfTI-1/2 file whose voxel data is truncated or holds NaN/inf values."""
    opener = gzip.open if _suffix(path) == ".nii.gz" else open
    try:
        with opener(path, "rb") as fh:
            raw = fh.read()
    except (OSError, EOFError, zlib.error) as exc:
        raise ChmflError(f"image {path}: unreadable or truncated ({type(exc).__name__}: {exc})") from None
    layout = _nifti_layout(raw[:540])
    if layout is None:
        raise ChmflError(f"image {path}: not a NIfTI file (bad header)")
    endian, dims, datatype, bitpix, offset = layout
    nbytes = int(np.prod(dims, dtype=np.int64)) * bitpix // 8
    if len(raw) < offset + nbytes:
        raise ChmflError(f"image {path}: truncated ({len(raw) - offset} of {nbytes} data bytes)")
    if datatype in _NIFTI_FLOATS:
        data = np.frombuffer(raw, dtype=endian + _NIFTI_FLOATS[datatype], count=nbytes * 8 // bitpix, offset=offset)
        check_finite(data.reshape(tuple(reversed(dims))), f"image {path}")


def _nifti_layout(head: bytes) -> tuple[str, list[int], int, int, int] | None:
    """(byte order, dims x..., datatype, bitpix, vox_offset) of a NIfTI-1/2 header, else None."""
    for endian in ("<", ">"):
        if len(head) >= 348 and struct.unpack(endian + "i", head[:4])[0] == 348:
            dim = struct.unpack(endian + "8h", head[40:56])
            datatype, bitpix = struct.unpack(endian + "2h", head[70:74])
            offset = int(struct.unpack(endian + "f", head[108:112])[0])
            return endian, list(dim[1: 1 + max(1, min(dim[0], 7))]), datatype, bitpix, max(offset, 352)
        if len(head) >= 540 and struct.unpack(endian + "i", head[:4])[0] == 540:
            datatype, bitpix = struct.unpack(endian + "2h", head[12:16])
            dim = struct.unpack(endian + "8q", head[16:80])
            offset = struct.unpack(endian + "q", head[168:176])[0]
            return endian, list(dim[1: 1 + max(1, min(dim[0], 7))]), datatype, bitpix, max(offset, 544)
    return None
