"""Cases as torch tensors for the training loop, and training-time augmentation.

The deterministic preprocessing ran once in ``chmfl data prepare``; here the cached boxes are
stacked into tensors (they are small: 48 patients at 1 mm are ~1 GB) and only augmentation
is random, drawn from an explicit ``torch.Generator`` so a resumed run replays it exactly.

A CT-only cohort (2D slices, ``preprocess.slices``) has no PET: ``CaseTensors.pet`` is then
None, and only networks that ignore PET can use it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from chmfl.data.cases import CaseData


@dataclass
class CaseTensors:
    """Stacked inputs of a list of cases: each image tensor (N, 1, D, H, W)."""

    pet: torch.Tensor | None  # None for a CT-only cohort
    ct: torch.Tensor
    mask: torch.Tensor | None  # (N, 1, D, H, W) float {0,1}; None when any case lacks one
    labels: torch.Tensor | None  # (N,) long; None when any case is unlabelled
    features: torch.Tensor | None = None  # (N, F) handcrafted features (hybrid methods)
    time: torch.Tensor | None = None  # (N,) float64 DM-free survival days (survival endpoint)
    event: torch.Tensor | None = None  # (N,) bool, DM observed

    def __len__(self) -> int:
        return self.ct.shape[0]

    def batch(self, idx: torch.Tensor) -> CaseTensors:
        """The cases at ``idx`` (a host tensor; copied to the cases' device without waiting)."""
        idx = idx.to(self.ct.device, non_blocking=True)
        pick = lambda t: None if t is None else t[idx]  # noqa: E731
        return CaseTensors(pick(self.pet), pick(self.ct), pick(self.mask), pick(self.labels), pick(self.features),
                           pick(self.time), pick(self.event))

    def to(self, device: str | torch.device) -> CaseTensors:
        """Every tensor on ``device`` (the same object where they already are)."""
        if self.ct.device == torch.device(device):
            return self
        move = lambda t: None if t is None else t.to(device)  # noqa: E731
        return CaseTensors(move(self.pet), move(self.ct), move(self.mask), move(self.labels), move(self.features),
                           move(self.time), move(self.event))


def stack_cases(cases: Sequence[CaseData], require_mask: bool = False, raw: bool = False) -> CaseTensors:
    """Load ``cases`` from the cache and stack them; all boxes must share one shape.

    ``raw``: CT in HU and PET in SUV (the cache's ``ct_hu`` / ``pet_suv``) instead of the
    standardised network inputs, for networks that window the images themselves."""
    arrays = [c.load() for c in cases]
    shapes = {a.ct.shape for a in arrays}
    if len(shapes) != 1:
        raise ValueError(f"cases have different box shapes {sorted(shapes)}: prepare them with one config")
    as_t = lambda xs: torch.from_numpy(np.stack(xs).astype(np.float32)).unsqueeze(1)  # noqa: E731
    has_mask = all(a.mask is not None for a in arrays)
    if require_mask and not has_mask:
        missing = [a.patient_id for a in arrays if a.mask is None]
        from chmfl.errors import ChmflError

        raise ChmflError(f"this method needs a tumour contour; none for {', '.join(missing[:5])}")
    labels = None
    if all(c.label is not None for c in cases):
        labels = torch.tensor([int(c.label) for c in cases], dtype=torch.long)
    time = event = None
    if all(c.time_days is not None and c.event is not None for c in cases):
        time = torch.tensor([float(c.time_days) for c in cases], dtype=torch.float64)
        event = torch.tensor([bool(c.event) for c in cases], dtype=torch.bool)
    pets = [a.pet_suv if raw else a.pet for a in arrays]
    return CaseTensors(
        pet=as_t(pets) if all(p is not None for p in pets) else None,
        ct=as_t([a.ct_hu if raw else a.ct for a in arrays]),
        mask=as_t([a.mask for a in arrays]) if has_mask else None,
        labels=labels, time=time, event=event,
    )


AUGMENTATIONS = ("flip-shift", "flip-rotate")


def augment(batch: CaseTensors, gen: torch.Generator, mode: str = "flip-shift",
            max_shift: int = 2) -> CaseTensors:
    """Training-time augmentation ``mode``: "flip-shift" (``flip_shift``, chmfl's) or
    "flip-rotate" (``flip_rotate``, hn_cnn's). Draws only from ``gen``."""
    if mode == "flip-shift":
        return flip_shift(batch, gen, max_shift)
    if mode == "flip-rotate":
        return flip_rotate(batch, gen)
    from chmfl.errors import ChmflError

    raise ChmflError(f"unknown augmentation {mode!r}; choose one of {', '.join(AUGMENTATIONS)}")


def flip_shift(batch: CaseTensors, gen: torch.Generator, max_shift: int = 2) -> CaseTensors:
    """Random flips along each spatial axis and a small integer shift, the same for every
    image of a patient (PET, CT, mask move together). Draws only from ``gen``."""
    n = len(batch)
    flips = torch.rand((n, 3), generator=gen) < 0.5
    shifts = torch.randint(-max_shift, max_shift + 1, (n, 3), generator=gen)
    out = {k: [] for k in ("pet", "ct", "mask")}
    for i in range(n):
        dims = [d + 1 for d in range(3) if flips[i, d]]  # spatial dims of a (1, D, H, W) item
        for key in out:
            t = getattr(batch, key)
            if t is None:
                continue
            x = t[i]
            if dims:
                x = torch.flip(x, dims)
            x = torch.roll(x, shifts=tuple(int(s) for s in shifts[i]), dims=(1, 2, 3))
            out[key].append(x)
    stack = lambda k: torch.stack(out[k]) if out[k] else None  # noqa: E731
    return CaseTensors(stack("pet"), stack("ct"), stack("mask"), batch.labels, batch.features,
                       batch.time, batch.event)


def flip_rotate(batch: CaseTensors, gen: torch.Generator, max_degrees: float = 10.0) -> CaseTensors:
    """hn_cnn's training augmentation (``data_augmentation.py``, its defaults) in the axial
    plane, the same for every slice and image of a patient: horizontal flip (p 0.5), vertical
    flip (p 0.5), a rotation by 90, 180 or 270 degrees (p 0.75) and a rotation by an
    angle uniform in [-10, 10] degrees about the centre, nearest-neighbour, zero outside
    (torchvision ``RandomRotation``'s defaults); rotations on square planes only. Draws only from ``gen``."""
    n = len(batch)
    flips = torch.rand((n, 2), generator=gen) < 0.5
    turn = torch.rand(n, generator=gen) < 0.75
    k = torch.randint(1, 4, (n,), generator=gen)
    angles = (torch.rand(n, generator=gen) * 2 - 1) * max_degrees
    out = {}
    for key in ("pet", "ct", "mask"):
        t = getattr(batch, key)
        if t is None:
            out[key] = None
            continue
        items = []
        for i in range(n):
            x = t[i]  # (1, D, H, W)
            dims = [d for d, f in zip((3, 2), flips[i]) if f]  # W (horizontal), H (vertical)
            x = torch.flip(x, dims) if dims else x
            if x.shape[-1] == x.shape[-2]:  # rotations keep a square plane's shape
                x = torch.rot90(x, int(k[i]), dims=(2, 3)) if turn[i] else x
                x = _rotate(x, float(angles[i]))
            items.append(x)
        out[key] = torch.stack(items)
    return CaseTensors(out["pet"], out["ct"], out["mask"], batch.labels, batch.features,
                       batch.time, batch.event)


def _rotate(x: torch.Tensor, degrees: float) -> torch.Tensor:
    """(C, D, H, W) rotated in the (H, W) plane about its centre, nearest, zeros outside."""
    theta = torch.deg2rad(torch.tensor(degrees, dtype=torch.float32))
    cos, sin = torch.cos(theta), torch.sin(theta)
    matrix = torch.stack([torch.stack([cos, -sin, torch.zeros(())]),
                          torch.stack([sin, cos, torch.zeros(())])]).unsqueeze(0)  # (1, 2, 3)
    planes = x.reshape(1, -1, *x.shape[-2:])  # (1, C D, H, W)
    grid = torch.nn.functional.affine_grid(matrix.to(x.device), list(planes.shape), align_corners=False)
    rotated = torch.nn.functional.grid_sample(planes.float(), grid, mode="nearest",
                                              padding_mode="zeros", align_corners=False)
    return rotated.reshape(x.shape).to(x.dtype)
