"""CNLPC (Table I): Diamant et al. 2019 ("Deep learning in head & neck cancer outcome
prediction", Sci Rep 9:2764) as re-implemented, with code and data, by Mateus et al. 2023
(Sci Rep 13:18176, ``MaastrichtU-CDS/hn_cnn``, ``hn_cnn/cnn.py`` class ``HNCNN``).

The network sees one 2D image: the axial CT slice with the largest tumour area, masked to
the tumour (GTV), HU window [-50, 300], 180 x 180 pixels of 1 mm. Layers, as ``HNCNN``:

=====  ==========================================  ===================  ============
block  layers (no padding anywhere)                output at 180 x 180  parameters
=====  ==========================================  ===================  ============
1      conv 3x3 s1 (8) -> max pool 3x3 s1 -> LReLU  8 x 178 -> 176        80
2      conv 3x3 s2 (16) -> max pool 3x3 s2 -> LReLU 16 x 87 -> 43        1,168
3      conv 4x4 s3 (32) -> max pool 4x4 s3 -> LReLU 32 x 14 -> 4         8,224
head   512 -> 128 -> 64 -> 32 -> 1, LReLU then dropout 0.3 / 0.2 / 0.1 after each hidden layer
=====  ==========================================  ===================  ============

LeakyReLU slope 0.01 (``HNCNN``'s default; the repository's ``RELU_SLOPE`` hyper-parameter
never reaches the network), PyTorch's default initialisation (``HNCNN`` sets none), 85,505
parameters with one input channel. The sigmoid output ``p = sigmoid(z)`` is returned as
logits ``[0, z]``: softmax gives ``p`` and cross-entropy equals binary cross-entropy. Its 2D
maps are big (8 x 176 x 176 per image): the ``channels_last`` speed option
(``chmfl.accel.layout``) halves its training step on a CPU.

What the source did in preprocessing happens here, on the cached box, so every chmfl cache
(at any voxel size) feeds it: the slice choice (per patient, the axial slice with the most
tumour pixels inside the HU window, hn_cnn's ``process_scan`` rule), resampling of that
slice to ``pixel_mm`` (bilinear CT, nearest-neighbour mask), the window (``(HU + 50) / 350``
inside (-50, 300] HU, 0 outside it and outside the tumour: the 8-bit PNG divided by 255, as
``ToTensor`` gives it) and a centred zero pad (or crop) to 180 x 180. A 4 mm box slice of
28 x 28 pixels thus becomes 112 x 112 pixels of 1 mm in a 180 x 180 frame: the tumour keeps
the physical scale the network was built for. Inputs are raw (``raw_inputs``: CT in HU, PET
in SUV) and the tumour mask is an input (``needs_mask``), as in the source.

``modality="petct"`` (the CHMFL paper fed CNLPC PET-CT) adds the PET slice at the same
index, masked to the tumour, as SUV / 10 clipped to [0, 3], as a second input channel of
the first convolution; everything else is unchanged.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from chmfl.errors import ChmflError
from chmfl.models.base import ModelOutput


class CNLPC(nn.Module):
    """Diamant/Mateus ``HNCNN`` on the tumour's largest CT slice (see the module docstring)."""

    segments = False
    needs_mask = True  # the input is the CT masked to the tumour, at inference too
    uses_handcrafted = False
    n_features = 0
    is_2d = True
    raw_inputs = True  # CT in HU and PET in SUV, not the cache's standardised intensities
    needs_spacing = True  # ``input_mm`` is set from the cases by the method layer

    def __init__(self, modality: str = "ct", input_mm: float = 1.0, pixel_mm: float = 1.0,
                 image_size: int = 180, base_filters: int = 8, leaky_slope: float = 0.01,
                 dropout: tuple[float, float, float] = (0.3, 0.2, 0.1),
                 window_hu: tuple[float, float] = (-50.0, 300.0), pet_scale_suv: float = 10.0,
                 pet_max: float = 3.0):
        super().__init__()
        if modality not in ("ct", "petct"):
            raise ChmflError(f"cnlpc: modality must be 'ct' or 'petct', not {modality!r}")
        if not (input_mm > 0 and pixel_mm > 0):
            raise ChmflError(f"cnlpc: input_mm and pixel_mm must be > 0, got {input_mm}, {pixel_mm}")
        self.modality, self.input_mm, self.pixel_mm = modality, float(input_mm), float(pixel_mm)
        self.image_size, self.window_hu = int(image_size), (float(window_hu[0]), float(window_hu[1]))
        self.pet_scale_suv, self.pet_max = float(pet_scale_suv), float(pet_max)
        f = base_filters
        self.lr = nn.LeakyReLU(negative_slope=leaky_slope)
        self.cv1 = nn.Conv2d(2 if modality == "petct" else 1, f, 3, stride=1)
        self.mxp1 = nn.MaxPool2d(3, stride=1)
        self.cv2 = nn.Conv2d(f, 2 * f, 3, stride=2)
        self.mxp2 = nn.MaxPool2d(3, stride=2)
        self.cv3 = nn.Conv2d(2 * f, 4 * f, 4, stride=3)
        self.mxp3 = nn.MaxPool2d(4, stride=3)
        flat = 4 * f * _feature_side(self.image_size) ** 2  # 32 x 4 x 4 = 512 at 180
        self.ln1, self.dp1 = nn.Linear(flat, 16 * f), nn.Dropout(dropout[0])
        self.ln2, self.dp2 = nn.Linear(16 * f, 8 * f), nn.Dropout(dropout[1])
        self.ln3, self.dp3 = nn.Linear(8 * f, 4 * f), nn.Dropout(dropout[2])
        self.ln4 = nn.Linear(4 * f, 1)

    # --- the source's preprocessing, on the box ------------------------------------------
    def tumour_slice(self, ct: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """(B,) index along D of each patient's slice with the most tumour pixels whose HU
        lies in the window (hn_cnn ``process_scan``; the first such slice on ties)."""
        lo, hi = self.window_hu
        inside = (mask > 0.5) & (ct >= lo) & (ct <= hi)  # (B, 1, D, H, W)
        return inside.flatten(3).sum(3)[:, 0].argmax(1)  # (B,)

    def image(self, pet: torch.Tensor | None, ct: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """The network's input image (B, C, S, S), S = ``image_size``, from the raw box."""
        idx = self.tumour_slice(ct, mask)
        rows = torch.arange(ct.shape[0], device=ct.device)
        ct_s, mask_s = ct[rows, :, idx].float(), mask[rows, :, idx].float()  # (B, 1, H, W)
        channels = [ct_s]
        if self.modality == "petct":
            if pet is None:
                raise ChmflError("cnlpc-petct needs PET; this cohort has CT only")
            channels.insert(0, pet[rows, :, idx].float())
        x = torch.cat(channels, 1)  # (B, C, H, W)
        factor = self.input_mm / self.pixel_mm
        if factor != 1.0:
            x = F.interpolate(x, scale_factor=factor, mode="bilinear", align_corners=False)
            mask_s = F.interpolate(mask_s, size=x.shape[2:], mode="nearest")
        lo, hi = self.window_hu
        hu = x[:, -1:]
        ct_in = torch.where((hu > lo) & (hu <= hi), (hu - lo) / (hi - lo), torch.zeros_like(hu))
        parts = [ct_in]
        if self.modality == "petct":
            parts.insert(0, (x[:, :1] / self.pet_scale_suv).clamp(0.0, self.pet_max))
        x = torch.cat(parts, 1) * (mask_s > 0.5)  # (B, C, h, w), zero outside the tumour
        return _centre(x, self.image_size)

    # --- the network ----------------------------------------------------------------------
    def forward(self, pet: torch.Tensor | None, ct: torch.Tensor, mask: torch.Tensor | None = None,
                features: torch.Tensor | None = None) -> ModelOutput:
        if mask is None:
            raise ChmflError("cnlpc needs the tumour mask: its input is the CT masked to the tumour")
        x = self.image(pet, ct, mask)  # (B, C, 180, 180)
        out = self.lr(self.mxp1(self.cv1(x)))  # (B, 8, 176, 176)
        out = self.lr(self.mxp2(self.cv2(out)))  # (B, 16, 43, 43)
        out = self.lr(self.mxp3(self.cv3(out)))  # (B, 32, 4, 4)
        out = torch.flatten(out, 1)  # (B, 512)
        out = self.dp1(self.lr(self.ln1(out)))
        out = self.dp2(self.lr(self.ln2(out)))
        vector = self.dp3(self.lr(self.ln3(out)))  # (B, 32)
        z = self.ln4(vector)  # (B, 1): sigmoid(z) = P(DM)
        return ModelOutput(logits=torch.cat([torch.zeros_like(z), z], 1), features=vector)


def _feature_side(size: int) -> int:
    """Side of the last pooled map for a ``size`` x ``size`` input (unpadded convs/pools)."""
    for kernel, stride in ((3, 1), (3, 1), (3, 2), (3, 2), (4, 3), (4, 3)):
        size = (size - kernel) // stride + 1
        if size < 1:
            raise ChmflError("cnlpc: image_size too small for its 3 conv + pool blocks")
    return size


def _centre(x: torch.Tensor, size: int) -> torch.Tensor:
    """Zero-pad or crop the last two dims of ``x`` to ``size`` x ``size``, centred."""
    for dim in (2, 3):
        have = x.shape[dim]
        if have < size:
            before = (size - have) // 2
            pad = [0, 0, 0, 0]
            pad[2 * (3 - dim)], pad[2 * (3 - dim) + 1] = before, size - have - before
            x = F.pad(x, pad)
        elif have > size:
            x = x.narrow(dim, (have - size) // 2, size)
    return x
