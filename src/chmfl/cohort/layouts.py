"""Finding the patients of a cohort folder; the layout is detected from what is on disk.

Layouts:

* ``ibsi``: the IBSI release of the STS cohort, ``<pid>/{CT,PET}/{image,mask}``; ``image``
  is a DICOM series folder (or one image file), ``mask`` holds the RTSTRUCT (GTV_Mass_CT /
  GTV_Mass_PET). The patient id is the folder name.
* ``tcia``: any nested tree of DICOM files, as the TCIA download gives it
  (``<pid>/<study>/<series>/*.dcm``): series are found by their tags (see ``cohort.tcia``).
* ``nnunet``: ``imagesTr/<case>_0000.nii.gz`` (CT), ``_0001`` (PET), ``labelsTr/<case>.nii.gz``
  (tumour label on the CT grid); ``imagesTs`` cases come without a label. A ``labels.csv`` in
  the root is used as the clinical file when none is given.
* ``slices``: one 2D CT slice per patient, ``<pid>.png`` or ``<pid>.nii[.gz]``, directly in
  the folder, with an optional tumour mask ``<pid>_mask.<same suffix>``; CT only (hn_cnn's
  published input is such a folder). A ``labels.csv`` in the root is used as for nnU-Net.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from chmfl.cohort.case import Case, MaskSource
from chmfl.cohort.clinical import ClinicalRecord, missing_record
from chmfl.errors import ChmflError

LAYOUTS = ("ibsi", "tcia", "nnunet", "slices")
IMAGE_SUFFIXES = (".nii.gz", ".nii", ".nrrd", ".nhdr", ".mha", ".mhd")
_IBSI_MODALITY = {"CT": "ct", "PET": "pet", "PT": "pet"}


def _image_suffix(path: Path) -> str | None:
    name = path.name.lower()
    return next((s for s in IMAGE_SUFFIXES if name.endswith(s)), None)


def _is_dicom(path: Path) -> bool:
    """A DICOM file by its 'DICM' preamble marker (or the .dcm suffix)."""
    if path.suffix.lower() == ".dcm":
        return True
    try:
        with open(path, "rb") as fh:
            fh.seek(128)
            return fh.read(4) == b"DICM"
    except OSError:
        return False


def _ibsi_patient_dirs(root: Path) -> list[Path]:
    return sorted(
        d for d in root.iterdir()
        if d.is_dir() and any((d / m / "image").exists() for m in ("CT", "PET", "PT"))
    )


def detect_layout(root: str | Path) -> str:
    """Name the layout of ``root`` ("ibsi", "tcia", "nnunet") or raise a ChmflError."""
    root = Path(root)
    if root.is_file():
        raise ChmflError(f"source {root} is a file, not a folder: give the cohort folder (IBSI, TCIA or "
                         "nnU-Net layout; 'chmfl convert' reads a single series or image)")
    if not root.is_dir():
        raise ChmflError(f"source folder not found: {root}")
    entries = [p for p in root.iterdir() if not p.name.startswith(".")]
    if not entries:
        raise ChmflError(f"source folder is empty: {root}")
    if (root / "imagesTr").is_dir() or (root / "imagesTs").is_dir():
        return "nnunet"
    if _ibsi_patient_dirs(root):
        return "ibsi"
    if any(_slice_suffix(p) for p in entries if p.is_file()):
        return "slices"
    files = (p for p in root.rglob("*") if p.is_file() and not p.name.startswith("."))
    if any(_is_dicom(p) for p in files):
        return "tcia"
    raise ChmflError(
        f"unknown layout in {root}: expected <pid>/CT/image + <pid>/PET/image (IBSI), "
        "imagesTr/ (nnU-Net), DICOM files (TCIA) or <pid>.png / <pid>.nii.gz slices"
    )


def _ibsi_image(folder: Path) -> Path:
    """The image of an IBSI modality folder: the folder itself (DICOM) or its one image file."""
    images = [p for p in folder.iterdir() if _image_suffix(p)] if folder.is_dir() else []
    return images[0] if len(images) == 1 else folder


def _ibsi_case(pdir: Path) -> Case:
    images: dict[str, Path] = {}
    masks: list[MaskSource] = []
    for sub in sorted(p for p in pdir.iterdir() if p.is_dir()):
        modality = _IBSI_MODALITY.get(sub.name.upper())
        if modality is None or not (sub / "image").exists():
            continue
        images[modality] = _ibsi_image(sub / "image")
        for f in sorted((sub / "mask").glob("*")) if (sub / "mask").is_dir() else []:
            kind = "labelmap" if _image_suffix(f) else "rtstruct"
            if f.is_file() and (kind == "labelmap" or _is_dicom(f)):
                masks.append(MaskSource(f, kind, modality))
    missing = [m.upper() for m in ("ct", "pet") if m not in images]
    if missing:
        raise ChmflError(f"patient folder {pdir} has no {'/'.join(missing)}/image")
    return Case(pdir.name, images["ct"], images["pet"], tuple(masks), "ibsi")


def _nnunet_cases(root: Path) -> list[Case]:
    cases = []
    for split, labels_dir in (("imagesTr", "labelsTr"), ("imagesTs", "labelsTs")):
        folder = root / split
        if not folder.is_dir():
            continue
        channels: dict[str, dict[str, Path]] = {}
        for f in sorted(folder.iterdir()):
            suffix = _image_suffix(f)
            stem = f.name[: -len(suffix)] if suffix else ""
            if not suffix or len(stem) < 6 or stem[-5] != "_" or not stem[-4:].isdigit():
                continue
            channels.setdefault(stem[:-5], {})[stem[-4:]] = f
        for cid, ch in sorted(channels.items()):
            if "0000" not in ch or "0001" not in ch:
                raise ChmflError(f"nnU-Net case {cid} in {folder} needs _0000 (CT) and _0001 (PET)")
            label = [root / labels_dir / f"{cid}{_image_suffix(ch['0000'])}"]
            label = [p for p in label if p.is_file()]
            masks = tuple(MaskSource(p, "labelmap", "ct") for p in label)
            cases.append(Case(cid, ch["0000"], ch["0001"], masks, "nnunet"))
    return cases


def _slice_suffix(path: Path) -> str | None:
    name = path.name.lower()
    return next((s for s in (".png", ".nii.gz", ".nii") if name.endswith(s)), None)


def _slice_cases(root: Path) -> list[Case]:
    """One CT-only case per ``<pid>.<suffix>`` slice file; ``<pid>_mask.<suffix>`` is its mask."""
    files = {p.name: p for p in root.iterdir() if p.is_file() and _slice_suffix(p)}
    cases = []
    for name, path in sorted(files.items()):
        suffix = _slice_suffix(path)
        pid = name[: -len(suffix)]
        if pid.endswith("_mask") and pid[: -len("_mask")] + suffix in files:
            continue  # the mask of another slice
        mask = files.get(f"{pid}_mask{suffix}")
        masks = (MaskSource(mask, "labelmap", "ct"),) if mask else ()
        cases.append(Case(pid, path, None, masks, "slices"))
    return cases


def find_cases(root: str | Path, layout: str | None = None) -> list[Case]:
    """All patients under ``root`` (sorted by id), without labels; layout auto-detected."""
    root = Path(root)
    layout = layout or detect_layout(root)
    if layout == "ibsi":
        cases = [_ibsi_case(d) for d in _ibsi_patient_dirs(root)]
    elif layout == "nnunet":
        cases = _nnunet_cases(root)
    elif layout == "tcia":
        from chmfl.cohort.tcia import find_tcia_cases

        cases = find_tcia_cases(root)
    elif layout == "slices":
        cases = _slice_cases(root)
    else:
        raise ChmflError(f"unknown layout '{layout}'; choose one of {LAYOUTS}")
    if not cases:
        raise ChmflError(f"no patients found in {root} (layout {layout})")
    ids = [c.patient_id for c in cases]
    dup = sorted({i for i in ids if ids.count(i) > 1})
    if dup:
        raise ChmflError(f"patient id(s) found twice in {root}: {', '.join(dup[:5])}")
    return sorted(cases, key=lambda c: c.patient_id)


def default_clinical(root: str | Path) -> Path | None:
    """A ``labels.csv`` shipped in the cohort root (nnU-Net style), if any."""
    path = Path(root) / "labels.csv"
    return path if path.is_file() else None


def attach_labels(cases: Iterable[Case], records: dict[str, ClinicalRecord] | None) -> list[Case]:
    """Give each case its clinical record; absent ones get dm None, 'no clinical record'."""
    if records is None:
        return [c.with_labels(missing_record(c.patient_id)) for c in cases]
    return [c.with_labels(records.get(c.patient_id, missing_record(c.patient_id))) for c in cases]
