"""``TrainConfig``: the science of the neural training loop, as plain frozen data.

What the paper or a method defines -- and so what a result *is*: epochs, early stopping, the
optimiser's lr and weight decay, batch size, w and the voxel reduction of Eq. (1), the DM
term of Eq. (1) (``objective``: cross-entropy, or the Cox partial likelihood of chmfl-surv),
augmentation, BatchNorm at prediction. How fast a run computes it (device, precision,
threads, determinism, speed options) is ``methods.runtime.RuntimeConfig``: stored beside it,
never part of a result's identity.

The defaults are the paper's (Section II.E): Adam, lr 1e-4, batch size 1, w = 0.5 in Eq. (1),
He initialisation (in the models), no augmentation, training until the total loss stops
changing (at most 200 epochs). ``ROBUST`` holds the settings chmfl found to generalise on
this cohort (see docs/training.md); it is opt-in, and every result records which was used.
Imports no torch (report readers use it).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from chmfl.errors import ChmflError
from chmfl.typecheck import coerce_fields


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 200  # maximum number of epochs
    patience: int = 20  # stop after this many epochs without a relative loss drop of min_delta
    min_delta: float = 0.01  # relative change of the epoch-mean total loss that counts as a change
    min_epochs: int = 1
    lr: float = 1e-4
    weight_decay: float = 0.0
    batch_size: int = 1
    seg_weight: float = 0.5  # w in Eq. (1)
    seg_reduction: str = "mean"  # voxel term of Eq. (1): "mean" over voxels or "sum" (literal)
    # the DM term of Eq. (1): "dm" cross-entropy on the DM label, or "cox" the negative Cox
    # partial likelihood of a one-output network over each batch's risk sets (chmfl-surv)
    objective: str = "dm"
    augment: bool = False  # random flips + small shifts (the paper names none)
    # BatchNorm at prediction: "running" (PyTorch eval mode, the paper's implied default) or
    # "sample" (each patient normalised by its own statistics, exactly as in training at
    # batch size 1; see docs/training.md for why this matters on this cohort)
    bn_eval: str = "running"

    def __post_init__(self) -> None:
        coerce_fields(self, "training setting")
        if self.seg_reduction not in ("mean", "sum"):
            raise ChmflError(f"seg_reduction must be mean or sum, not {self.seg_reduction!r}")
        if self.bn_eval not in ("running", "sample"):
            raise ChmflError(f"bn_eval must be running or sample, not {self.bn_eval!r}")
        if self.objective not in ("dm", "cox"):
            raise ChmflError(f"objective must be 'dm' or 'cox', not {self.objective!r}")
        if self.objective == "cox" and self.batch_size < 2:
            raise ChmflError("the Cox objective needs batches of >= 2 patients (risk sets); "
                             f"batch_size is {self.batch_size}")

    def replace(self, **changes: Any) -> TrainConfig:
        unknown = set(changes) - set(TRAIN_FIELDS)
        if unknown:
            raise ChmflError(f"unknown training setting(s): {', '.join(sorted(unknown))}")
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> TrainConfig:
        return cls().replace(**(d or {}))


TRAIN_FIELDS = tuple(f.name for f in dataclasses.fields(TrainConfig))

# Opt-in settings (``--preset robust``), chosen from the mechanism and training-fold
# diagnostics only, never from test folds (docs/training.md): BatchNorm predicts with each
# patient's own statistics, exactly as it trained at batch size 1, and flips/shifts enlarge
# 40 training patients. Everything else stays the paper's.
ROBUST = {"bn_eval": "sample", "augment": True}
