"""The one typed image boundary of chmfl: ``Volume``.

Axis order and units (the contract every later stage relies on):

* ``array`` is indexed (z, y, x) = (slice, row, column), as numpy/SimpleITK give it.
* ``spacing`` is in mm, in the same (z, y, x) order.
* ``origin`` is the patient-space position (LPS, mm) of the centre of voxel [0, 0, 0],
  in (x, y, z) order, as in DICOM ImagePositionPatient and ITK.
* ``direction`` is ITK's 3x3 direction matrix, row-major, 9 floats: column j is the
  patient-space unit vector of image index axis j, where index axes are (x, y, z) =
  (column, row, slice) -- i.e. the reverse of the array axis order.
* CT arrays are in HU, PET arrays in SUV (g/ml, SUVbw unless stated), masks uint8 {0, 1}.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # imported where used: training from a prepared cache needs no SimpleITK
    import SimpleITK as sitk


@dataclass(frozen=True)
class Volume:
    """A 3D image with its geometry. See the module docstring for axis order and units."""

    array: np.ndarray
    spacing: tuple[float, float, float]  # (z, y, x) mm
    origin: tuple[float, float, float]  # (x, y, z) LPS mm of voxel [0,0,0]
    direction: tuple[float, ...] = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0)
    meta: dict = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        if self.array.ndim != 3:
            raise ValueError(f"Volume needs a 3D array, got shape {self.array.shape}")

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(self.array.shape)  # type: ignore[return-value]

    def to_sitk(self) -> sitk.Image:
        """Return a SimpleITK image with the same pixels and geometry."""
        import SimpleITK as sitk

        img = sitk.GetImageFromArray(np.ascontiguousarray(self.array))
        img.SetSpacing(tuple(float(s) for s in self.spacing[::-1]))
        img.SetOrigin(tuple(float(o) for o in self.origin))
        img.SetDirection(tuple(float(d) for d in self.direction))
        return img

    @classmethod
    def from_sitk(cls, img: sitk.Image, meta: dict | None = None) -> Volume:
        """Build a Volume from a 3D SimpleITK image (copying its pixels)."""
        if img.GetDimension() != 3:
            raise ValueError(f"expected a 3D image, got {img.GetDimension()}D")
        import SimpleITK as sitk

        return cls(
            array=sitk.GetArrayFromImage(img),
            spacing=tuple(float(s) for s in img.GetSpacing()[::-1]),
            origin=tuple(float(o) for o in img.GetOrigin()),
            direction=tuple(float(d) for d in img.GetDirection()),
            meta=dict(meta or {}),
        )

    def with_array(self, array: np.ndarray, **meta) -> Volume:
        """Same geometry, new pixels (e.g. a mask on this image's grid)."""
        if array.shape != self.array.shape:
            raise ValueError(f"shape {array.shape} differs from the volume's {self.array.shape}")
        return Volume(array, self.spacing, self.origin, self.direction, {**self.meta, **meta})

    def index_to_physical(self, zyx: np.ndarray) -> np.ndarray:
        """Map continuous (z, y, x) indices, shape (..., 3), to LPS (x, y, z) mm."""
        ijk = np.asarray(zyx, dtype=float)[..., ::-1]
        d = np.asarray(self.direction, dtype=float).reshape(3, 3)
        return np.asarray(self.origin) + (ijk * np.asarray(self.spacing[::-1])) @ d.T

    def physical_to_index(self, xyz: np.ndarray) -> np.ndarray:
        """Map LPS (x, y, z) mm, shape (..., 3), to continuous (z, y, x) indices."""
        d = np.asarray(self.direction, dtype=float).reshape(3, 3)
        ijk = (np.asarray(xyz, dtype=float) - np.asarray(self.origin)) @ np.linalg.inv(d).T
        ijk = ijk / np.asarray(self.spacing[::-1])
        return ijk[..., ::-1]

    def same_grid(self, other: Volume, atol: float = 1e-3) -> bool:
        """True when both volumes share shape, spacing, origin and direction."""
        return (
            self.shape == other.shape
            and np.allclose(self.spacing, other.spacing, atol=atol)
            and np.allclose(self.origin, other.origin, atol=atol)
            and np.allclose(self.direction, other.direction, atol=atol)
        )
