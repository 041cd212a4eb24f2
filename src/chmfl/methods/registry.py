"""Every method chmfl can run, by name: one plain dict, resolved in one place.

Each entry names the class implementing it (``module:Class``, a ``methods.base.Method``), the
keyword arguments that make this variant, a one-line description (``chmfl methods`` prints
them), the endpoint it predicts and, for comparators trained as their sources trained them,
their own training science (``train``: it overrides an experiment's shared settings and the
preset; an experiment's method entry and ``--set`` override it; ``cv.runner.fold_settings``).
``method_class`` resolves an entry and checks it against the contract (a survival method
declares the survival abilities of ``methods.base``); the tests check
every entry (tests/methods/test_contract.py). Imports no torch (the report reads ``METHODS``).
"""

from __future__ import annotations

import importlib
import inspect
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from chmfl.errors import ChmflError

if TYPE_CHECKING:
    from chmfl.methods.base import FitContext, Method
    from chmfl.methods.spec import MethodRun


@dataclass(frozen=True)
class MethodInfo:
    target: str  # "package.module:Class"
    description: str
    kwargs: dict[str, Any] = field(default_factory=dict)
    table: str = ""  # where the paper reports it
    # "dm": a DM classifier (predict_proba; on the survival endpoint its P(DM) is the risk);
    # "dm-free-survival": a survival model (predict_risk, predict_survival), survival endpoint only
    endpoint: str = "dm"
    train: dict[str, Any] = field(default_factory=dict)  # the method's own TrainConfig settings


# CNLPC as hn_cnn trains it (``hn_cnn/fit.py`` DEFAULT_HYPERPARAMETERS, ``training.py``):
# SGD lr 0.05, momentum 0.9, weight decay 1e-4, class-weighted BCE (0.7, 3.7), batch 64 with
# the last incomplete batch dropped, flips + rotations; no loss-based early stopping.
CNLPC_TRAIN = {"optimizer": "sgd", "lr": 0.05, "momentum": 0.9, "weight_decay": 1e-4,
               "class_weights": [0.7, 3.7], "batch_size": 64, "drop_last": True,
               "augment": True, "augmentation": "flip-rotate", "patience": 1_000_000}


_NEURAL = "chmfl.methods.neural:NeuralMethod"
_SURV = "dm-free-survival"

METHODS: dict[str, MethodInfo] = {
    # --- CHMFL and its ablations (Tables I, II, SIV; Fig 5) ---
    "chmfl": MethodInfo(_NEURAL, "CHMFL: PET and CT 3D branches, hierarchical fusion at five scales, tumour-constrained decoder (Eq. 1)", {"model": "chmfl"}, "I, II, SII, SIII, SIV"),
    "cfl": MethodInfo(_NEURAL, "CFL ablation: CHMFL without HMFL, classifies from the deepest fused features only", {"model": "cfl"}, "I, II, SIV"),
    "mask-hmfl": MethodInfo(_NEURAL, "Mask+HMFL ablation: CHMFL without CFL, inputs PET+mask and CT+mask", {"model": "mask-hmfl"}, "I, II"),
    "chmfl-gn4": MethodInfo(_NEURAL, "CHMFL with GroupNorm, 4 channels per group (Table SIII GN_c4)", {"model": "chmfl", "model_kwargs": {"norm": "group4"}}, "SIII"),
    "chmfl-gn8": MethodInfo(_NEURAL, "CHMFL with GroupNorm, 8 channels per group (Table SIII GN_c8)", {"model": "chmfl", "model_kwargs": {"norm": "group8"}}, "SIII"),
    "chmfl-gn16": MethodInfo(_NEURAL, "CHMFL with GroupNorm, 16 channels per group (Table SIII GN_c16)", {"model": "chmfl", "model_kwargs": {"norm": "group16"}}, "SIII"),
    "chmfl-resnet18": MethodInfo(_NEURAL, "CHMFL in 2D with ResNet18 branches (Table SII)", {"model": "chmfl-resnet18"}, "SII"),
    "chmfl-resnet34": MethodInfo(_NEURAL, "CHMFL in 2D with ResNet34 branches (Table SII)", {"model": "chmfl-resnet34"}, "SII"),
    "chmfl-resnet50": MethodInfo(_NEURAL, "CHMFL in 2D with ResNet50 branches (Table SII)", {"model": "chmfl-resnet50"}, "SII"),
    # --- comparison methods (Table I) ---
    "hc-rf": MethodInfo("chmfl.methods.classical:HandcraftedRF", "HC+RF: IBSI handcrafted radiomics (pyradiomics) of PET and CT in the tumour, feature selection + random forest (Vallieres 2015)", {}, "I"),
    "cnlpc": MethodInfo(_NEURAL, "CNLPC (Diamant et al. 2019, as hn_cnn re-implements it): 2D CNN on the CT slice of largest tumour area, masked to the tumour, HU window [-50, 300]; SGD, class-weighted BCE", {"model": "cnlpc"}, "I", train=CNLPC_TRAIN),
    "cnlpc-petct": MethodInfo(_NEURAL, "CNLPC with PET-CT input (PET slice as a second channel), as the CHMFL paper compared it", {"model": "cnlpc", "model_kwargs": {"modality": "petct"}}, "I", train=CNLPC_TRAIN),
    "mor-3dcnn": MethodInfo("chmfl.methods.hybrid:MOR3DCNN", "MOR+3D CNNs: many-objective radiomics model and a 3D CNN fused by evidential reasoning (Chen et al. 2019)", {}, "I"),
    "3dmcl": MethodInfo(_NEURAL, "3DMCL: 3D CNN on PET-CT with the tumour mask as input plus handcrafted radiomic features (Peng et al. 2019)", {"model": "3dmcl"}, "I"),
    # --- modality / dimensionality comparisons (Table II) ---
    "cnn2d-ct": MethodInfo(_NEURAL, "2D CNN on CT slices through the box centre", {"model": "cnn2d", "model_kwargs": {"modality": "ct"}}, "II"),
    "cnn2d-pet": MethodInfo(_NEURAL, "2D CNN on PET slices through the box centre", {"model": "cnn2d", "model_kwargs": {"modality": "pet"}}, "II"),
    "cnn2d-petct": MethodInfo(_NEURAL, "2D CNN on PET-CT (2 channels) slices through the box centre", {"model": "cnn2d", "model_kwargs": {"modality": "petct"}}, "II, SII"),
    "cnn3d-ct": MethodInfo(_NEURAL, "3D CNN on the CT box", {"model": "cnn3d", "model_kwargs": {"modality": "ct"}}, "II"),
    "cnn3d-pet": MethodInfo(_NEURAL, "3D CNN on the PET box", {"model": "cnn3d", "model_kwargs": {"modality": "pet"}}, "II"),
    "cnn3d-petct": MethodInfo(_NEURAL, "3D CNN on PET-CT (2 channels)", {"model": "cnn3d", "model_kwargs": {"modality": "petct"}}, "II"),
    # --- transfer-learning baselines (Table SII) ---
    "resnet18-petct": MethodInfo(_NEURAL, "2D ResNet18 on PET-CT slices; --pretrained FILE for given weights", {"model": "resnet18-petct"}, "SII"),
    "resnet34-petct": MethodInfo(_NEURAL, "2D ResNet34 on PET-CT slices; --pretrained FILE for given weights", {"model": "resnet34-petct"}, "SII"),
    "resnet50-petct": MethodInfo(_NEURAL, "2D ResNet50 on PET-CT slices; --pretrained FILE for given weights", {"model": "resnet50-petct"}, "SII"),
    # --- segmentation comparator (Table SIV) ---
    "vnet": MethodInfo(_NEURAL, "V-Net (MONAI) tumour segmentation with Milletari's soft Dice loss; DM probability from its predicted tumour's volume and SUVmax", {"model": "vnet"}, "SIV", train={"seg_loss": "dice"}),
    "vnet-ce": MethodInfo(_NEURAL, "V-Net as 'vnet' but trained with voxel cross-entropy instead of the Dice loss", {"model": "vnet"}, "SIV", train={"seg_loss": "ce"}),
    # --- beyond the paper: the floor every table should show ---
    "suvmax-volume": MethodInfo("chmfl.methods.classical:SuvmaxVolume", "Floor: PET SUVmax and tumour volume inside the contour (full-contour table when the cache has one), logistic regression", {}, "-"),
    "suvmax-mtv": MethodInfo("chmfl.methods.mtv:SuvmaxMTV", "Annotation-free floor: SUVmax and metabolic tumour volume (>= 40 % SUVmax, connected to the hottest voxel of the box; no contour), logistic regression", {}, "-"),
    "clinical": MethodInfo("chmfl.methods.clinical:ClinicalLogistic", "Clinical baseline: age, grade and MSKCC histology group, logistic regression (no image)", {}, "-"),
    # --- DM-free survival (chmfl cv --endpoint dm-free-survival) ---
    "cox-suvmax-volume": MethodInfo("chmfl.methods.survival:CoxSuvmaxVolume", "Survival floor: Cox PH on PET SUVmax and tumour volume inside the contour (full-contour table when the cache has one)", {}, "-", _SURV),
    "cox-clinical": MethodInfo("chmfl.methods.survival:CoxClinical", "Cox PH on age, grade and MSKCC histology group (no image)", {}, "-", _SURV),
    "chmfl-surv": MethodInfo("chmfl.methods.neural_survival:NeuralSurvivalMethod", "CHMFL with a Cox partial-likelihood head (Eq. 1 with the DM term swapped; Breslow ties; decoder kept)", {"model": "chmfl"}, "-", _SURV),
    "rsf-hc": MethodInfo("chmfl.methods.survival:RSFHandcrafted", "Random survival forest on IBSI handcrafted PET/CT features, selected in the training fold", {}, "-", _SURV),
}


def method_train(name: str) -> dict[str, Any]:
    """Method ``name``'s own training science (empty for most: they train with the experiment's)."""
    if name not in METHODS:
        raise ChmflError(f"unknown method {name!r}; 'chmfl methods' lists: {', '.join(METHODS)}")
    return dict(METHODS[name].train)


def method_class(name: str) -> type[Method]:
    """The class implementing registered method ``name``, checked against the contract of
    ``methods.base`` (importing it already ran ``check_contract``)."""
    from chmfl.methods.base import Method

    if name not in METHODS:
        raise ChmflError(f"unknown method {name!r}; 'chmfl methods' lists: {', '.join(METHODS)}")
    module, _, attr = METHODS[name].target.partition(":")
    cls = getattr(importlib.import_module(module), attr)
    if not (isinstance(cls, type) and issubclass(cls, Method)) or inspect.isabstract(cls):
        raise TypeError(f"{METHODS[name].target} does not implement chmfl.methods.base.Method")
    check_endpoint(name, cls)
    return cls


def check_endpoint(name: str, cls: type[Method]) -> None:
    """A method registered for the survival endpoint is a survival model (declares
    "predict_risk", ``methods.base``) and a DM classifier is not."""
    from chmfl.methods.base import SURVIVAL

    endpoint = METHODS[name].endpoint
    if endpoint not in ("dm", _SURV):
        raise TypeError(f"method {name!r} is registered for an unknown endpoint {endpoint!r}")
    if (SURVIVAL in cls.capabilities) != (endpoint == _SURV):
        raise TypeError(f"method {name!r} is registered for the {endpoint!r} endpoint but {cls.__name__} "
                        f"{'declares' if SURVIVAL in cls.capabilities else 'does not declare'} {SURVIVAL!r}")


def create(run: MethodRun, ctx: FitContext | None = None, pretrained: str | None = None) -> Method:
    """The method of ``run`` (its registered arguments, the run's model arguments and size),
    ready to fit in ``ctx``; ``pretrained``: a weights file for the network."""
    from chmfl.methods.base import FitContext

    model_kwargs = dict(run.model_kwargs)
    if pretrained:
        model_kwargs["pretrained"] = pretrained
    return method_class(run.method).build(run.method, dict(METHODS[run.method].kwargs), model_kwargs,
                                          ctx or FitContext(), run.size)


def check_run(run: MethodRun) -> None:
    """Build ``run``'s method once, unfitted (cheap: networks are built at ``fit``), and each of
    its selection candidates, so a bad model argument or size is a one-line error when the
    experiment is read."""
    for r in (run, *run.candidates()):
        create(r)


def load_method(directory):
    """Rebuild a saved method from its folder (config.json names the method; no code runs)."""
    from pathlib import Path

    from chmfl.methods.neural import read_model_config

    cfg = read_model_config(Path(directory))
    name = cfg.get("method", "")
    if name not in METHODS:
        raise ChmflError(f"{directory}: config.json names an unknown method {name!r}")
    return method_class(name).load(directory)
