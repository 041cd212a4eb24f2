"""``Case``: one patient of a cohort as found on disk (paths and labels, never pixels)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from chmfl.cohort.clinical import ClinicalRecord
from chmfl.errors import ChmflError

MODALITIES = ("ct", "pet")


@dataclass(frozen=True)
class MaskSource:
    """Where a tumour contour lives: an RTSTRUCT (+ ROI name) or a label image.

    ``drawn_on`` names the image whose grid the contour refers to ("ct" or "pet"): an RTSTRUCT
    is rasterised on that image's grid before it is resampled onto the box.
    """

    path: Path
    kind: str  # "rtstruct" | "labelmap"
    drawn_on: str  # "ct" | "pet"
    roi: str | None = None  # ROI name inside an RTSTRUCT; None: chosen by rule (see io)


@dataclass(frozen=True)
class Case:
    """One patient: image locations (DICOM series folder or image file), contours, labels.
    ``pet`` is None in a CT-only cohort (the ``slices`` layout)."""

    patient_id: str
    ct: Path
    pet: Path | None
    masks: tuple[MaskSource, ...] = ()
    layout: str = ""
    labels: ClinicalRecord | None = None

    def mask_for(self, prefer: str = "ct") -> MaskSource | None:
        """The contour drawn on ``prefer`` ("ct" | "pet"), else any contour, else None."""
        if prefer not in MODALITIES:
            raise ChmflError(f"mask modality must be one of {MODALITIES}, got '{prefer}'")
        for m in self.masks:
            if m.drawn_on == prefer:
                return m
        return self.masks[0] if self.masks else None

    def with_labels(self, labels: ClinicalRecord) -> Case:
        return replace(self, labels=labels)

    def input_files(self) -> list[Path]:
        """Every file this case is read from (for the cache's source fingerprint)."""
        out: list[Path] = []
        for p in (self.ct, self.pet, *(m.path for m in self.masks)):
            if p is None:
                continue
            out.extend(sorted(f for f in p.rglob("*") if f.is_file()) if p.is_dir() else [p])
        return out
