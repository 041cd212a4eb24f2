"""A synthetic human body for whole-body PET-CT test studies: shapes, tissues, painting.

The body is a few dozen ellipsoids and (tapered) elliptic cylinders laid out in a body frame
(X to the patient's left, Y posterior, Z up, mm from the point between the hip joints), each
painted with a tissue's CT number (HU) and FDG uptake (SUV). Values are textbook ones for a
fasting adult on a low-dose, non-contrast PET-CT: fat -100 HU / SUV 0.35, muscle 45 / 0.8,
lung -830 / 0.45, liver 55 / ~2.2, blood 42 / 1.8, marrow 250 / 1.5; physiological uptake
drawn per patient: brain grey matter SUV 7-13, myocardium 3-15, renal pelvis 5-15, urine in
the bladder 8-30; and uptake no localisation rule knows: bowel loops (1.5-4.5) and throat
glands (2-4.5). PET is blurred to ~6.5 mm FWHM and given 12 % correlated noise, CT 20 HU
white noise. Anatomy is only as detailed as tumour localisation needs (skull, lungs, heart,
liver, spleen, kidneys, spine, pelvis, bladder, limbs with long bones, a scanner table).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from chmfl.preprocess.geometry import Grid

# tissue -> (HU, SUV); None: drawn per patient (``BodyPlan.suv``)
TISSUES: dict[str, tuple[float, float | None]] = {
    "air": (-1000.0, 0.0), "fat": (-100.0, 0.35), "muscle": (45.0, 0.8), "soft": (35.0, 1.1),
    "lung": (-830.0, 0.45), "bone": (800.0, 0.7), "marrow": (250.0, 1.5), "skull": (1100.0, 0.5),
    "grey": (36.0, None), "white": (29.0, None), "blood": (42.0, 1.8), "myocardium": (45.0, None),
    "liver": (55.0, None), "spleen": (45.0, 1.9), "kidney": (32.0, 3.0), "renal_pelvis": (10.0, None),
    "urine": (8.0, None), "airway": (-950.0, 0.0), "table": (150.0, 0.0),
}
VARIABLE_HU = {"tumour": 40.0, "bowel": 20.0, "gland": 40.0}  # "<kind>:<SUV>" tissues


@dataclass(frozen=True)
class Shape:
    """An ellipsoid (``kind="ellipsoid"``: centre, semi-axes) or a z-aligned elliptic cylinder
    (``"cylinder"``: centre x, y; semi-axes at z0 and scaled by ``taper`` at z1), body frame mm."""

    tissue: str
    kind: str
    centre: tuple[float, float, float]  # X, Y, Z (cylinder: Z unused)
    semi: tuple[float, float, float]  # ellipsoid: a, b, c; cylinder: a, b, (unused)
    z0: float = 0.0
    z1: float = 0.0
    taper: float = 1.0  # cylinder semi-axes at z1 relative to z0


@dataclass(frozen=True)
class BodyPlan:
    """Where the body is (frame origin in LPS mm), its size and its physiological uptake."""

    origin: tuple[float, float, float]  # LPS of the body frame's origin (between the hips)
    scale: float = 1.0
    suv: tuple[tuple[str, float], ...] = (("grey", 10.0), ("white", 4.0), ("myocardium", 8.0),
                                         ("liver", 2.2), ("renal_pelvis", 9.0), ("urine", 18.0))
    bladder_size: float = 1.0
    extra: tuple[Shape, ...] = ()  # e.g. a synthetic tumour (tissue "tumour:<SUV>")

    @property
    def vertex_z(self) -> float:
        """LPS z (mm) of the top of the head."""
        return self.origin[2] + 880.0 * self.scale

    def to_lps(self, xyz: tuple[float, float, float]) -> tuple[float, float, float]:
        return tuple(float(o + self.scale * v) for o, v in zip(self.origin, xyz))  # type: ignore[return-value]

    def tissue_values(self, tissue: str) -> tuple[float, float]:
        """(HU, SUV) of a tissue; "<kind>:<SUV>" (tumour, bowel, gland) has that uptake."""
        if ":" in tissue:
            kind, suv = tissue.split(":", 1)
            return VARIABLE_HU[kind], float(suv)
        hu, suv = TISSUES[tissue]
        return hu, dict(self.suv)[tissue] if suv is None else suv


def random_plan(origin: tuple[float, float, float], rng: np.random.Generator) -> BodyPlan:
    """A plan with body size and physiological uptake drawn for one patient, including the
    uptake no rule recognises: 3-6 bowel loops (SUV 1.5-4.5) and two throat glands (2-4.5)."""
    grey = float(rng.uniform(7.0, 13.0))
    suv = (("grey", grey), ("white", 0.4 * grey), ("myocardium", float(rng.uniform(3.0, 15.0))),
           ("liver", float(rng.uniform(1.9, 2.5))), ("renal_pelvis", float(rng.uniform(5.0, 15.0))),
           ("urine", float(rng.uniform(8.0, 30.0))))
    bowel = [Shape(f"bowel:{rng.uniform(1.5, 4.5):.2f}", "ellipsoid",
                   (float(rng.uniform(-110, 110)), float(rng.uniform(-70, 30)), float(rng.uniform(60, 250))),
                   tuple(float(v) for v in rng.uniform(12, 25, 3)))
             for _ in range(int(rng.integers(3, 7)))]
    glands = [Shape(f"gland:{rng.uniform(2.0, 4.5):.2f}", "ellipsoid", (side * 35.0, -20.0, 640.0), (12.0, 12.0, 15.0))
              for side in (-1.0, 1.0)]
    return BodyPlan(origin, float(rng.uniform(0.92, 1.08)), suv, float(rng.uniform(0.7, 1.3)), (*bowel, *glands))


def _limb(side: float, x: float, y: float, z0: float, z1: float, r0: float, r1: float,
          bone_r: float) -> list[Shape]:
    """Fat sleeve, muscle, long bone with marrow, from z0 down to z1."""
    t = r1 / r0
    out = [Shape("fat", "cylinder", (side * x, y, 0), (r0, r0, 0), z0, z1, t),
           Shape("muscle", "cylinder", (side * x, y, 0), (r0 - 12, r0 - 12, 0), z0, z1, (r1 - 12) / (r0 - 12))]
    return out + [Shape("bone", "cylinder", (side * x, y + 5, 0), (bone_r, bone_r, 0), z0, z1),
                  Shape("marrow", "cylinder", (side * x, y + 5, 0), (bone_r - 5, bone_r - 5, 0), z0, z1)]


def body_shapes(plan: BodyPlan) -> list[Shape]:
    """Every shape of the body in painting order (later shapes overwrite earlier ones)."""
    E, C = "ellipsoid", "cylinder"  # noqa: N806 - short names keep the layout readable
    s: list[Shape] = [Shape("table", C, (0, 150, 0), (240, 6, 0), -1000, 1000)]
    for side in (-1.0, 1.0):
        s += _limb(side, 95, 5, 20, -440, 85, 62, 14)  # thigh, femur
        s += _limb(side, 95, 15, -440, -900, 58, 36, 12)  # knee, lower leg, tibia
        s += _limb(side, 215, 0, 570, 250, 42, 36, 11)  # upper arm, humerus
        s += _limb(side, 215, -10, 250, 10, 36, 28, 9)  # forearm
        s += [Shape("muscle", E, (side * 215, -10, -40), (20, 40, 55))]  # hand
        s += [Shape("fat", E, (side * 75, 70, 0), (95, 65, 95)), Shape("muscle", E, (side * 75, 70, 0), (80, 52, 80))]
    s += [Shape("fat", C, (0, 0, 0), (165, 110, 0), -60, 600), Shape("soft", C, (0, 0, 0), (150, 96, 0), -60, 600),
          Shape("fat", C, (0, 0, 0), (185, 105, 0), 450, 590), Shape("muscle", C, (0, 0, 0), (172, 92, 0), 450, 590),
          Shape("muscle", C, (0, 10, 0), (55, 55, 0), 590, 700), Shape("airway", C, (0, -20, 0), (9, 9, 0), 560, 690),
          Shape("fat", E, (0, -5, 770), (78, 98, 110)), Shape("skull", E, (0, 0, 790), (71, 89, 81)),
          Shape("grey", E, (0, 0, 790), (64, 82, 74)), Shape("white", E, (0, 0, 790), (42, 56, 48))]
    s += [Shape("lung", E, (-80, 5, 450), (65, 75, 125)), Shape("lung", E, (85, 5, 455), (60, 75, 120)),
          Shape("myocardium", E, (25, -25, 390), (55, 50, 60)), Shape("blood", E, (25, -25, 390), (36, 32, 42)),
          Shape("blood", C, (5, 40, 0), (13, 13, 0), 150, 480),
          Shape("liver", E, (-75, -5, 280), (95, 85, 75)), Shape("spleen", E, (95, 45, 300), (35, 45, 55))]
    for side in (-1.0, 1.0):
        s += [Shape("kidney", E, (side * 75, 55, 215), (32, 30, 55)),
              Shape("renal_pelvis", E, (side * 62, 45, 205), (12, 14, 25)),
              Shape("bone", E, (side * 115, 20, 90), (25, 55, 60)), Shape("marrow", E, (side * 115, 20, 90), (17, 45, 50)),
              Shape("bone", E, (side * 95, 0, 0), (27, 27, 27)), Shape("marrow", E, (side * 95, 0, 0), (20, 20, 20)),
              Shape("bone", E, (side * 40, -65, -15), (35, 14, 18)), Shape("bone", E, (side * 75, 30, -25), (20, 25, 30))]
    s += [Shape("bone", C, (0, 70, 0), (22, 19, 0), -20, 700), Shape("marrow", C, (0, 70, 0), (16, 13, 0), -20, 700),
          Shape("bone", E, (0, 85, 80), (45, 20, 55))]
    b = plan.bladder_size
    s += [Shape("urine", E, (0, -45, 25 + 10 * (b - 1)), (45 * b, 40 * b, 38 * b))]
    return s + list(plan.extra)


def _axes(grid: Grid) -> list[np.ndarray]:
    """Patient coordinates of the grid's voxel centres along (z, y, x) (axis-aligned grids)."""
    d = np.asarray(grid.direction, float).reshape(3, 3)
    if not np.allclose(d, np.eye(3)):
        raise ValueError("the phantom paints identity-direction grids only")
    return [grid.origin[2 - a] + np.arange(grid.shape[a]) * grid.spacing[a] for a in range(3)]


def _index_range(coords: np.ndarray, lo: float, hi: float) -> slice:
    return slice(int(np.searchsorted(coords, lo)), int(np.searchsorted(coords, hi, side="right")))


def _paint_one(labels: np.ndarray, axes: list[np.ndarray], shape: Shape, plan: BodyPlan, code: int) -> None:
    k = plan.scale
    cx, cy, cz = plan.to_lps(shape.centre)
    a, b = shape.semi[0] * k, shape.semi[1] * k
    if shape.kind == "ellipsoid":
        c = shape.semi[2] * k
        zlo, zhi = cz - c, cz + c
    else:
        z0, z1 = plan.to_lps((0, 0, shape.z0))[2], plan.to_lps((0, 0, shape.z1))[2]
        zlo, zhi = min(z0, z1), max(z0, z1)
    grow = max(1.0, shape.taper)
    sl = (_index_range(axes[0], zlo, zhi), _index_range(axes[1], cy - b * grow, cy + b * grow),
          _index_range(axes[2], cx - a * grow, cx + a * grow))
    z, y, x = (ax[s] for ax, s in zip(axes, sl))
    if not (z.size and y.size and x.size):
        return
    z, y, x = z[:, None, None], y[None, :, None], x[None, None, :]
    if shape.kind == "ellipsoid":
        inside = ((x - cx) / a) ** 2 + ((y - cy) / b) ** 2 + ((z - cz) / c) ** 2 <= 1.0
    else:
        t = (z - z0) / (z1 - z0) if z1 != z0 else 0.0 * z
        f = 1.0 + (shape.taper - 1.0) * t
        inside = ((x - cx) / (a * f)) ** 2 + ((y - cy) / (b * f)) ** 2 <= 1.0
    labels[sl][inside] = code


def paint_labels(plan: BodyPlan, grid: Grid) -> tuple[np.ndarray, list[str]]:
    """Tissue codes (uint8, (z, y, x), 0 = air) on ``grid`` and the code -> tissue list."""
    shapes = body_shapes(plan)
    names = ["air"] + sorted({sh.tissue for sh in shapes})
    labels = np.zeros(grid.shape, np.uint8)
    axes = _axes(grid)
    for sh in shapes:
        _paint_one(labels, axes, sh, plan, names.index(sh.tissue))
    return labels, names


def ct_from_labels(labels: np.ndarray, names: list[str], plan: BodyPlan, rng: np.random.Generator,
                   noise_hu: float = 20.0) -> np.ndarray:
    """CT HU (float32) from tissue codes, with white noise (a block of 8 noise slices,
    rolled in-plane for each 8 slices: independent enough, and 8x cheaper to draw)."""
    lut = np.array([plan.tissue_values(n)[0] for n in names], np.float32)
    hu = lut[labels]
    block = rng.standard_normal((min(8, hu.shape[0]), *hu.shape[1:]), dtype=np.float32)
    block *= noise_hu
    for k in range(0, hu.shape[0], len(block)):
        shift = tuple(int(v) for v in rng.integers(0, hu.shape[1:], 2))
        part = hu[k:k + len(block)]
        part += np.roll(block, shift, axis=(1, 2))[: len(part)]
    return hu


def pet_from_labels(labels: np.ndarray, names: list[str], plan: BodyPlan, spacing: tuple,
                    rng: np.random.Generator, fwhm_mm: float = 6.5, noise: float = 0.12) -> np.ndarray:
    """PET SUV (float32) from tissue codes: blurred to ``fwhm_mm`` and given correlated
    multiplicative noise of relative SD ``noise``."""
    lut = np.array([plan.tissue_values(n)[1] for n in names], np.float32)
    sigma = fwhm_mm / 2.355
    suv = ndimage.gaussian_filter(lut[labels], [sigma / s for s in spacing], mode="nearest")
    grain = ndimage.gaussian_filter(rng.normal(0.0, 1.0, suv.shape).astype(np.float32), 1.0)
    grain *= noise / max(float(grain.std()), 1e-6)
    return np.clip(suv * (1.0 + grain), 0.0, None).astype(np.float32)
