"""CHMFL and every network it is compared with, as ``nn.Module``s, by name.

Every network: ``forward(pet, ct, mask=None, features=None) -> ModelOutput`` (see
``base.py``) and class attributes ``segments``, ``needs_mask``, ``uses_handcrafted``,
``n_features`` and ``is_2d`` telling the training loop what to feed it, and optionally
``sizes`` (named option sets, e.g. CHMFL's "demo"), ``raw_inputs`` (CT in HU and PET in SUV
instead of the standardised inputs) and ``needs_spacing`` (the method layer sets the
``input_mm`` option from the cases' pixel size). Networks know nothing of the speed and
memory options (``chmfl.accel``), which swap their module classes from the outside.
"""

from __future__ import annotations

import inspect
from typing import Any

from torch import nn

from chmfl.errors import ChmflError
from chmfl.models.base import ModelOutput
from chmfl.models.chmfl import CFL, CHMFL, MaskHMFL
from chmfl.models.cnlpc import CNLPC
from chmfl.models.cnn import PlainCNN2D, PlainCNN3D
from chmfl.models.hybrid import MCL3D, MORCNN
from chmfl.models.resnet2d import (
    CHMFLResNet18,
    CHMFLResNet34,
    CHMFLResNet50,
    ResNet18PetCt,
    ResNet34PetCt,
    ResNet50PetCt,
)
from chmfl.models.vnet import VNetSeg

MODELS: dict[str, type[nn.Module]] = {
    "chmfl": CHMFL,
    "cfl": CFL,
    "mask-hmfl": MaskHMFL,
    "chmfl-resnet18": CHMFLResNet18,
    "chmfl-resnet34": CHMFLResNet34,
    "chmfl-resnet50": CHMFLResNet50,
    "cnn2d": PlainCNN2D,
    "cnn3d": PlainCNN3D,
    "resnet18-petct": ResNet18PetCt,
    "resnet34-petct": ResNet34PetCt,
    "resnet50-petct": ResNet50PetCt,
    "cnlpc": CNLPC,
    "3dmcl": MCL3D,
    "mor-cnn": MORCNN,
    "vnet": VNetSeg,
}


def model_parameters(name: str) -> dict[str, Any]:
    """The keyword arguments network ``name`` accepts, with their defaults."""
    if name not in MODELS:
        raise ChmflError(f"unknown network {name!r}; known: {', '.join(MODELS)}")
    sig = inspect.signature(MODELS[name].__init__)
    return {k: p.default for k, p in sig.parameters.items() if k != "self"}


def size_options(name: str, size: str) -> dict[str, Any]:
    """The options of network ``name`` at its named size ``size`` (e.g. CHMFL's "demo"; every
    network has "paper", its default build)."""
    if name not in MODELS:
        raise ChmflError(f"unknown network {name!r}; known: {', '.join(MODELS)}")
    sizes = getattr(MODELS[name], "sizes", {"paper": {}})
    if size not in sizes:
        raise ChmflError(f"network {name!r} has no size {size!r}; sizes: {', '.join(sizes)}")
    return dict(sizes[size])


def build_model(name: str, **kwargs: Any) -> nn.Module:
    """Network ``name`` built with ``kwargs`` (unknown keys are an error, not ignored)."""
    accepted = model_parameters(name)
    unknown = sorted(set(kwargs) - set(accepted))
    if unknown:
        raise ChmflError(f"network {name!r} has no option {', '.join(unknown)}; "
                         f"options: {', '.join(accepted) or 'none'}")
    return MODELS[name](**kwargs)


__all__ = ["MODELS", "ModelOutput", "build_model", "model_parameters", "size_options"]
