"""``PrepareConfig``: every choice ``chmfl data prepare`` makes, hashed to key the cache.

The hash is the SHA-256 of the config's canonical JSON (sorted keys) plus
``PREPROCESS_VERSION``; bump that constant whenever the preprocessing code changes what it
writes, so stale caches are not reused.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field, fields

from chmfl.errors import ChmflError

PREPROCESS_VERSION = 2  # 2: contoured patients also keep their hotspot test box
INTENSITY_MODES = ("paper", "window", "zscore")
CENTER_MODES = ("auto", "mask", "hotspot")
# Storage steps (times ``PrepareConfig.quantize``): powers of two, so rounding is exact in
# float32, and far below the images' noise (CT 1/16 HU, SUV and network inputs 1/256).
QUANTUM = {"ct_hu": 2.0**-4, "pet_suv": 2.0**-8, "ct": 2.0**-8, "pet": 2.0**-8}
PAD_MODES = ("edge", "constant")


@dataclass(frozen=True)
class IntensityConfig:
    """Per-volume intensity standardisation (nothing is fitted on data: no fold leakage)."""

    mode: str = "paper"  # "paper" | "window" | "zscore"
    # "paper": z-score, then Foracchia et al. 2005 luminosity/contrast normalisation
    tile_mm: float = 40.0  # tile edge for the local background mean/std (3-4 tiles per box side)
    background_threshold: float = 1.0  # |z - mean| / std below this counts as background
    min_local_std: float = 0.1  # floor of the local std (z units): caps the gain at 10x
    clip: float = 10.0  # "paper" and "zscore" outputs are clipped to [-clip, clip]
    # "window": fixed linear maps
    ct_window_hu: tuple[float, float] = (-1000.0, 1000.0)  # mapped to [-1, 1]
    pet_scale_suv: float = 10.0  # SUV / scale, clipped to [0, pet_max]
    pet_max: float = 3.0


@dataclass(frozen=True)
class HotspotConfig:
    """Box centre without a contour (``preprocess.localise.locate_tumour``)."""

    sigma_mm: float = 4.0  # Gaussian smoothing of the SUV (about the PET resolution)
    threshold_suv: float = 2.5  # candidate regions: smoothed SUV >= this
    fraction: float = 0.4  # fallback (nothing >= threshold): smoothed SUV >= fraction * max
    margin: float = 2.0  # choose only when the best candidate's score >= margin x the next's
    min_score: float = 5.0  # ... and >= this excess uptake (SUV x ml); weaker: refuse
    max_outside_ct: float = 0.5  # refuse when more than this of the candidate (or its box) lies outside the CT
    min_contrast: float = 2.0  # a candidate's SUVmax must reach this x its surroundings' (else "diffuse")
    physiological: bool = True  # recognise urine, brain, heart, kidneys (CT anatomy), diffuse uptake; never choose them

    def __post_init__(self) -> None:
        if not (self.sigma_mm > 0 and self.threshold_suv > 0 and 0 < self.fraction < 1):
            raise ChmflError("prepare config: hotspot sigma_mm and threshold_suv must be > 0, fraction in (0, 1)")
        if self.margin < 1 or not 0 <= self.max_outside_ct <= 1 or min(self.min_contrast, self.min_score) < 0:
            raise ChmflError("prepare config: hotspot margin must be >= 1, max_outside_ct in [0, 1], "
                             "min_contrast and min_score >= 0")


@dataclass(frozen=True)
class PrepareConfig:
    """The whole preprocessing recipe (defaults follow the paper)."""

    voxel_mm: float = 1.0  # isotropic voxel edge (paper: 1 mm)
    box_mm: tuple[float, float, float] = (144.0, 112.0, 112.0)  # (z, y, x): 112 x 112 x 144 mm
    mask_from: str = "ct"  # "ct" (GTV_Mass_CT) | "pet" (GTV_Mass_PET)
    roi: str | None = None  # RTSTRUCT ROI name; None: chosen by rule (contains "mass")
    center: str = "auto"  # "auto" (mask if any, else hotspot) | "mask" | "hotspot"
    pad: str = "edge"  # outside the image: "edge" (replicate) | "constant" (below)
    ct_pad_hu: float = -1000.0  # used when pad == "constant"
    pet_pad_suv: float = 0.0  # used when pad == "constant"
    suv: str = "bw"  # PET SUV normalisation asked of the DICOM reader
    dtype: str = "float32"  # image dtype in the cache ("float16" for the demo bundle)
    quantize: float = 1.0  # round stored values to QUANTUM steps x this (0: off); lets deflate work
    intensity: IntensityConfig = field(default_factory=IntensityConfig)
    hotspot: HotspotConfig = field(default_factory=HotspotConfig)

    def __post_init__(self) -> None:
        checks = (
            ("intensity", self.intensity.mode, INTENSITY_MODES),
            ("center", self.center, CENTER_MODES),
            ("pad", self.pad, PAD_MODES),
            ("mask_from", self.mask_from, ("ct", "pet")),
            ("dtype", self.dtype, ("float32", "float16")),
        )
        for name, value, allowed in checks:
            if value not in allowed:
                raise ChmflError(f"prepare config: {name} must be one of {allowed}, got '{value}'")
        if self.quantize < 0:
            raise ChmflError(f"prepare config: quantize must be >= 0, got {self.quantize}")
        if not self.voxel_mm > 0:
            raise ChmflError(f"prepare config: voxel_mm must be > 0, got {self.voxel_mm}")
        if len(self.box_mm) != 3 or min(self.box_mm) < self.voxel_mm:
            raise ChmflError(f"prepare config: box_mm must be 3 sizes >= voxel_mm, got {self.box_mm}")

    @property
    def box_shape(self) -> tuple[int, int, int]:
        """The box in voxels, (z, y, x): (144, 112, 112) at 1 mm, (36, 28, 28) at 4 mm."""
        return tuple(max(1, round(b / self.voxel_mm)) for b in self.box_mm)  # type: ignore[return-value]

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> PrepareConfig:
        """Rebuild from ``to_dict`` output (e.g. the YAML next to a cache or in a model)."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ChmflError(f"prepare config: unknown key(s) {unknown}")
        data = dict(data)
        data["intensity"] = _sub(IntensityConfig, data.get("intensity", {}))
        data["hotspot"] = _sub(HotspotConfig, data.get("hotspot", {}))
        data["box_mm"] = tuple(float(b) for b in data.get("box_mm", cls.box_mm))
        return cls(**data)

    def hash(self) -> str:
        """12 hex digits identifying this recipe (and the preprocessing code version)."""
        text = json.dumps({"v": PREPROCESS_VERSION, **self.to_dict()}, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:12]


def _sub(cls, value):
    if isinstance(value, cls):
        return value
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(value) - known)
    if unknown:
        raise ChmflError(f"prepare config: unknown {cls.__name__} key(s) {unknown}")
    value = {k: (tuple(v) if isinstance(v, list) else v) for k, v in value.items()}
    return cls(**value)
