"""The box grid and resampling onto it (pure functions of Volumes and arrays).

Each modality goes straight from its own original grid onto the box grid in one
interpolation (trilinear for images, see ``resample_image``), so PET and CT are aligned by
patient coordinates, whatever their voxel sizes and extents. The box axes are the patient
(LPS) axes: array axis 0 runs foot-to-head (z), 1 anterior-to-posterior (y), 2 right-to-left
(x); voxel [0, 0, 0] is the box corner with the smallest x, y, z.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import SimpleITK as sitk

from chmfl.io.volume import Volume
from chmfl.preprocess.interp import lerp_axis

IDENTITY = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0)


@dataclass(frozen=True)
class Grid:
    """A voxel grid in patient space: shape and spacing (z, y, x); origin LPS (x, y, z)."""

    shape: tuple[int, int, int]
    spacing: tuple[float, float, float]
    origin: tuple[float, float, float]
    direction: tuple[float, ...] = IDENTITY

    def volume(self, array: np.ndarray) -> Volume:
        """``array`` (of this grid's shape) as a Volume on this grid."""
        if tuple(array.shape) != tuple(self.shape):
            raise ValueError(f"array shape {array.shape} is not the grid's {self.shape}")
        return Volume(array, self.spacing, self.origin, self.direction)

    @property
    def center(self) -> tuple[float, float, float]:
        """LPS (x, y, z) of the grid centre."""
        mid = (np.asarray(self.shape, float) - 1.0) / 2.0
        return tuple(float(v) for v in self.volume_like().index_to_physical(mid))

    def volume_like(self) -> Volume:
        return Volume(np.empty((1, 1, 1), np.uint8), self.spacing, self.origin, self.direction)

    @classmethod
    def like(cls, volume: Volume) -> Grid:
        """The grid of ``volume`` (its shape, spacing, origin and direction)."""
        return cls(volume.shape, tuple(float(s) for s in volume.spacing),  # type: ignore[arg-type]
                   tuple(float(o) for o in volume.origin), tuple(float(d) for d in volume.direction))  # type: ignore[arg-type]

    def contains(self, xyz: np.ndarray) -> np.ndarray:
        """True for LPS points (..., 3) inside the box (voxel edges, not centres)."""
        idx = self.volume_like().physical_to_index(xyz)
        return np.all((idx >= -0.5) & (idx <= np.asarray(self.shape) - 0.5), axis=-1)


def box_grid(
    center_xyz: tuple[float, float, float],
    voxel_mm: float,
    box_mm: tuple[float, float, float],
) -> Grid:
    """An isotropic box of ``box_mm`` (z, y, x) centred on ``center_xyz`` (LPS mm)."""
    shape = tuple(max(1, round(b / voxel_mm)) for b in box_mm)  # (z, y, x)
    half = (np.asarray(shape[::-1], float) - 1.0) / 2.0 * voxel_mm  # (x, y, z)
    origin = tuple(float(c) for c in np.asarray(center_xyz, float) - half)
    return Grid(shape, (float(voxel_mm),) * 3, origin)  # type: ignore[arg-type]


def _resample(image: sitk.Image, grid: Grid, interpolator: int, default: float,
              extrapolate: bool) -> np.ndarray:
    out = sitk.Resample(
        image,
        [int(s) for s in grid.shape[::-1]],
        sitk.Transform(),
        interpolator,
        [float(o) for o in grid.origin],
        [float(s) for s in grid.spacing[::-1]],
        [float(d) for d in grid.direction],
        float(default),
        sitk.sitkFloat32,
        bool(extrapolate),
    )
    return sitk.GetArrayFromImage(out)


def _axis_signs(direction: tuple[float, ...]) -> np.ndarray | None:
    """(x, y, z) signs when the direction matrix is diagonal +-1 (axis-aligned), else None."""
    d = np.asarray(direction, float).reshape(3, 3)
    return np.diag(d).copy() if np.allclose(np.abs(d), np.eye(3), atol=1e-6) else None


def _index_positions(volume: Volume, grid: Grid) -> list[np.ndarray] | None:
    """For each array axis (z, y, x): the continuous source index of every grid position
    along it, when both grids are axis-aligned (else None: use ITK)."""
    vs, gs = _axis_signs(volume.direction), _axis_signs(grid.direction)
    if vs is None or gs is None:
        return None
    out = []
    for axis in range(3):
        p = 2 - axis  # physical axis (x, y, z) of array axis (z, y, x)
        phys = grid.origin[p] + gs[p] * np.arange(grid.shape[axis]) * grid.spacing[axis]
        out.append((phys - volume.origin[p]) / (vs[p] * volume.spacing[axis]))
    return out


def _separable_linear(array: np.ndarray, positions: list[np.ndarray], pad_value: float | None) -> np.ndarray:
    """Trilinear interpolation as three 1-D passes, with ITK's boundary rules.

    Inside [-0.5, n - 0.5] the neighbours are clamped to the image (as ITK's linear
    interpolator), so inside the image this equals ``sitk.Resample`` up to float rounding.
    Outside, ``pad_value`` is written, or (None) the position is clamped onto the image's
    boundary face, still interpolated along that face (smoother than ITK's nearest-neighbour
    extrapolator, which also rounds along the face).
    """
    out = np.asarray(array, dtype=np.float32)
    for axis in (2, 1, 0):  # the slice axis last: its copies are contiguous blocks
        out = lerp_axis(out, np.clip(positions[axis], 0.0, out.shape[axis] - 1.0), axis)
    if pad_value is not None:
        for axis in range(3):
            n = array.shape[axis]
            outside = (positions[axis] < -0.5) | (positions[axis] > n - 0.5)
            index = [slice(None)] * 3
            index[axis] = outside
            out[tuple(index)] = pad_value
    return out


def resample_image(volume: Volume, grid: Grid, pad: str = "edge", pad_value: float = 0.0) -> np.ndarray:
    """Linear resampling of ``volume`` onto ``grid`` (float32, (z, y, x)).

    Outside the image: ``pad="edge"`` repeats the image's boundary values, ``pad="constant"``
    writes ``pad_value``. Axis-aligned grids (every axial CT/PET) take a separable path,
    several times faster than ``sitk.Resample`` and equal to it inside the image (tested);
    other orientations go through ``sitk.Resample`` (edge: its nearest-neighbour extrapolator).
    """
    positions = _index_positions(volume, grid)
    if positions is not None:
        return _separable_linear(volume.array, positions, None if pad == "edge" else pad_value)
    image = volume.to_sitk()
    if image.GetPixelID() not in (sitk.sitkFloat32, sitk.sitkFloat64):
        image = sitk.Cast(image, sitk.sitkFloat32)
    return _resample(image, grid, sitk.sitkLinear, pad_value, pad == "edge")


def resample_mask(mask: Volume, grid: Grid) -> np.ndarray:
    """A binary mask onto ``grid`` without shifting it: linear on the 0/1 values, >= 0.5.

    Nearest-neighbour resampling would move the boundary by up to half a source voxel in a
    direction set by the grids' phase; thresholding the linear interpolant at 0.5 puts the
    boundary halfway between inside and outside voxel centres, so the centroid stays put.
    """
    binary = (np.asarray(mask.array) > 0).astype(np.float32)
    positions = _index_positions(mask, grid)
    if positions is not None:
        values = _separable_linear(binary, positions, 0.0)
    else:
        values = _resample(mask.with_array(binary).to_sitk(), grid, sitk.sitkLinear, 0.0, False)
    return (values >= 0.5).astype(np.uint8)


def inside_fraction(volume: Volume, grid: Grid) -> float:
    """Fraction of the grid's voxel centres that fall inside ``volume``'s image extent.

    Axis-aligned image and grid (the usual axial case): a product of three 1-D fractions.
    Otherwise: a nearest-neighbour resampling of an all-ones image.
    """
    positions = _index_positions(volume, grid)
    if positions is not None:
        frac = 1.0
        for pos, n in zip(positions, volume.shape):
            frac *= float(np.mean((pos >= -0.5) & (pos <= n - 0.5)))
        return frac
    return float(_inside_itk(volume, grid).mean(dtype=np.float64))


def inside_mask(volume: Volume, grid: Grid) -> np.ndarray:
    """Boolean (z, y, x) array on ``grid``: True where the voxel centre lies inside
    ``volume``'s image extent (voxel edges), e.g. where a CT exists on the PET grid."""
    positions = _index_positions(volume, grid)
    if positions is None:
        return _inside_itk(volume, grid) > 0
    ins = [(pos >= -0.5) & (pos <= n - 0.5) for pos, n in zip(positions, volume.shape)]
    return ins[0][:, None, None] & ins[1][None, :, None] & ins[2][None, None, :]


def _inside_itk(volume: Volume, grid: Grid) -> np.ndarray:
    """1 where ``grid`` voxel centres fall inside ``volume`` (any orientation): an all-ones
    image resampled by nearest neighbour."""
    ones = sitk.Image([int(s) for s in volume.shape[::-1]], sitk.sitkUInt8) + 1
    ones.SetSpacing([float(s) for s in volume.spacing[::-1]])
    ones.SetOrigin([float(o) for o in volume.origin])
    ones.SetDirection([float(d) for d in volume.direction])
    return _resample(ones, grid, sitk.sitkNearestNeighbor, 0.0, False)


def mask_points(mask: Volume) -> np.ndarray:
    """LPS (x, y, z) positions of the mask's voxel centres, shape (n, 3)."""
    return mask.index_to_physical(np.argwhere(np.asarray(mask.array) > 0).astype(float))
