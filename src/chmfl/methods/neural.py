"""``NeuralMethod``: any chmfl network behind the common ``fit`` / ``predict_proba`` interface.

One class serves CHMFL, its ablations and every CNN comparator: the registry passes the
network name and its keyword arguments; the network's class attributes (``segments``,
``needs_mask``, ``n_features``) tell this class what to feed it. Hybrid networks that take
handcrafted features (3DMCL) get them from ``chmfl.radiomics`` through a transform fitted on
the training fold only.

Model folder (``save``/``load``): ``weights.safetensors`` and ``config.json`` (method, network
and its kwargs, the science ``train`` and the ``runtime`` settings, feature transform,
preprocessing, package version). Folders saved before the two were split hold one flat
``train`` dict; ``load`` routes its keys by name. Loading executes no code from the folder.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from chmfl import __version__
from chmfl.data.cases import CaseData, labels_of
from chmfl.data.tensors import CaseTensors, stack_cases
from chmfl.errors import ChmflError
from chmfl.fsutil import atomic_dir
from chmfl.methods.base import FitContext, FitInfo, Method, check_options
from chmfl.methods.inference import predict_network, saliency_maps
from chmfl.methods.runtime import RuntimeConfig, resolve_accelerator, resolve_precision, settings
from chmfl.methods.train_config import TrainConfig
from chmfl.methods.trainer import Trainer

MODEL_KIND = "chmfl-neural-method"


class NeuralMethod(Method):
    """A registry method backed by a chmfl network (see module docstring)."""

    capabilities = frozenset({"predict_mask", "embed", "saliency"})

    def __init__(self, name: str, model: str, model_kwargs: dict | None = None,
                 train: TrainConfig | None = None, runtime: RuntimeConfig | None = None,
                 seed: int = 0, workdir: str | Path | None = None, progress: bool = True) -> None:
        self.name = name
        self.model = model
        self.model_kwargs = dict(model_kwargs or {})
        self.train = train or TrainConfig()
        self.runtime = runtime or RuntimeConfig()
        self.seed = seed
        self.workdir = workdir
        self.progress = progress
        self.feature_transform_ = None

    @classmethod
    def build(cls, name: str, registered: Mapping[str, Any], model_kwargs: Mapping[str, Any],
              ctx: FitContext, size: str | None = None) -> NeuralMethod:
        """``registered``: {"model": network name, "model_kwargs": the variant's options};
        ``size`` a named size of the network (``models.size_options``), then ``model_kwargs``."""
        from chmfl.models import model_parameters, size_options

        model = registered["model"]
        kwargs = {**registered.get("model_kwargs", {}), **(size_options(model, size) if size else {}),
                  **model_kwargs}
        check_options(name, kwargs, list(model_parameters(model)))
        return cls(name, model, kwargs, ctx.train, ctx.runtime, ctx.seed,
                   None if ctx.workdir is None else Path(ctx.workdir), ctx.progress)

    # --- building -------------------------------------------------------------------------
    def _build(self, n_features: int = 0) -> torch.nn.Module:
        from chmfl.models import build_model

        kwargs = dict(self.model_kwargs)
        if n_features:
            kwargs["n_features"] = n_features
        torch.manual_seed(self.seed)  # He initialisation draws from here
        return build_model(self.model, **kwargs)

    def _uses_pet(self) -> bool:
        """False only for networks set to CT alone (``modality="ct"``)."""
        from chmfl.models import model_parameters

        modality = self.model_kwargs.get("modality", model_parameters(self.model).get("modality", "petct"))
        return modality != "ct"

    def _network_class(self):
        from chmfl.models import MODELS

        if self.model not in MODELS:
            raise ChmflError(f"unknown network {self.model!r}")
        return MODELS[self.model]

    def needs_contour(self) -> str | None:
        """The network's own declaration: a mask input or handcrafted features of the contour."""
        cls = self._network_class()
        if cls.needs_mask:
            return "the network takes the tumour mask as an input"
        if getattr(cls, "uses_handcrafted", False):
            return "handcrafted features inside the test patient's contour"
        return None

    def _tensors(self, cases: Sequence[CaseData]) -> CaseTensors:
        cls = self._network_class()
        if getattr(cls, "needs_spacing", False):
            _check_spacing(cases, self.model_kwargs.get("input_mm"), self.model)
        data = stack_cases(cases, require_mask=cls.needs_mask, raw=getattr(cls, "raw_inputs", False))
        if data.pet is None and self._uses_pet():
            raise ChmflError(f"method {self.name} needs PET; these cases are CT only")
        if getattr(cls, "segments", False) is False and not cls.needs_mask:
            data.mask = None  # the loop then trains the classifier term only
        if self.feature_transform_ is not None:
            from chmfl.radiomics import feature_table

            table = feature_table(list(cases))
            data.features = torch.from_numpy(self.feature_transform_.apply(table).astype(np.float32))
        return data

    # --- the method interface -------------------------------------------------------------
    def fit(self, cases: Sequence[CaseData]) -> NeuralMethod:
        labels_of(cases)  # every training case needs a label
        cls = self._network_class()
        self.feature_transform_ = None
        n_features = 0
        if getattr(cls, "uses_handcrafted", False):
            from chmfl.radiomics import feature_table, fit_feature_transform

            self.feature_transform_ = fit_feature_transform(feature_table(list(cases)), labels_of(cases))
            n_features = self.feature_transform_.n_out
        if getattr(cls, "needs_spacing", False) and "input_mm" not in self.model_kwargs:
            self.model_kwargs["input_mm"] = _in_plane_mm(cases[0])  # stored with the model
        data = self._tensors(cases)
        net = self._build(n_features)
        accelerator = resolve_accelerator(self.runtime.accelerator)
        self.run_info_ = {"device": accelerator, "precision": resolve_precision(self.runtime.precision, accelerator)}
        trainer = Trainer(net, self.train, self.runtime, self.seed,
                          workdir=Path(self.workdir) if self.workdir else None, progress=self.progress)
        self.runtime = trainer.runtime  # the speed options as decided for the training device
        self.network_, self.history_ = trainer.fit(data)
        self.n_features_ = n_features
        self.diagnostics_ = self._diagnostics(data)
        return self

    def _predict_device(self) -> str:
        """Where to predict: the GPU when the training settings allow one and it is here; a
        model trained on a GPU still predicts on a machine without one."""
        if self.runtime.accelerator in ("auto", "cuda") and torch.cuda.is_available():
            return "cuda"
        return "cpu"

    def _predict_settings(self) -> dict[str, str]:
        """``predict_network``'s device and precision for this method's network."""
        device = self._predict_device()
        return {"device": device, "precision": resolve_precision(self.runtime.precision, device)}

    def _diagnostics(self, data: CaseTensors) -> dict[str, float]:
        """Training-fold AUC of the trained network as it will predict, with BatchNorm on its
        running averages and on each patient's own statistics: a gap between them (and the
        last epoch's train-mode AUC) shows the train/eval mismatch without touching test data."""
        from sklearn.metrics import roc_auc_score

        y = data.labels.numpy()
        out = {"train_auc_last_epoch": float(self.history_[-1]["train_auc"]) if self.history_ else float("nan")}
        has_bn = any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in self.network_.modules())
        modes = ("running", "sample") if has_bn else ("running",)
        settings = self._predict_settings()
        for mode in modes:
            p = predict_network(self.network_, data, bn_eval=mode, **settings)["probability"]
            out[f"train_auc_eval_{mode}"] = float(roc_auc_score(y, p)) if len(set(y)) == 2 else float("nan")
        return out

    def _outputs(self, cases: Sequence[CaseData], segment: bool = True) -> dict[str, np.ndarray]:
        """``predict_network`` on ``cases``; ``segment=False`` skips the decoder where it may."""
        if getattr(self, "network_", None) is None:
            raise ChmflError(f"method {self.name} is not fitted")
        return predict_network(self.network_, self._tensors(cases), bn_eval=self.train.bn_eval,
                               segment=segment, **self._predict_settings())

    def predict_proba(self, cases: Sequence[CaseData]) -> np.ndarray:
        return self._outputs(cases)["probability"]

    def predict_all(self, cases: Sequence[CaseData], saliency: bool = True) -> dict[str, np.ndarray]:
        """Probability, mask / features where the network has them (one pass), and
        input-gradient saliency maps (Fig. 6) unless ``saliency=False``."""
        out = self._outputs(cases)
        if saliency:
            out["saliency"] = self.saliency(cases)
        return out

    def saliency(self, cases: Sequence[CaseData]) -> np.ndarray:
        return saliency_maps(self.network_, self._tensors(cases), self.train.bn_eval)

    def fit_info(self) -> FitInfo:
        run = getattr(self, "run_info_", {})
        return FitInfo(history=list(getattr(self, "history_", [])),
                       diagnostics=getattr(self, "diagnostics_", None), device=run.get("device", "cpu"),
                       precision=run.get("precision"), train=self.train, runtime=self.runtime)

    def predict_mask(self, cases: Sequence[CaseData]) -> list[np.ndarray]:
        out = self._outputs(cases)
        if "mask" not in out:
            raise ChmflError(f"method {self.name} does not segment")
        return list(out["mask"])

    def embed(self, cases: Sequence[CaseData]) -> np.ndarray:
        return self._outputs(cases)["features"]

    # --- persistence ----------------------------------------------------------------------
    def config(self) -> dict[str, Any]:
        ft = getattr(self, "feature_transform_", None)
        return {
            "kind": MODEL_KIND, "chmfl_version": __version__, "method": self.name,
            "model": self.model, "model_kwargs": self.model_kwargs,
            "train": self.train.to_dict(), "runtime": self.runtime.to_dict(), "seed": self.seed,
            "n_features": getattr(self, "n_features_", 0),
            "feature_transform": ft.to_dict() if ft is not None else None,
        }

    def save(self, directory: str | Path, extra: dict | None = None) -> None:
        from safetensors.torch import save_file

        if getattr(self, "network_", None) is None:
            raise ChmflError(f"method {self.name} is not fitted; nothing to save")
        with atomic_dir(directory) as tmp:
            state = {k: v.detach().contiguous() for k, v in self.network_.state_dict().items()}
            save_file(state, str(tmp / "weights.safetensors"))
            (tmp / "config.json").write_text(json.dumps({**self.config(), **(extra or {})}, indent=2))

    @classmethod
    def load(cls, directory: str | Path) -> NeuralMethod:
        from safetensors.torch import load_file

        directory = Path(directory)
        cfg = read_model_config(directory)
        model_kwargs = dict(cfg["model_kwargs"])
        model_kwargs.pop("pretrained", None)  # the saved weights already hold what pretraining gave
        train, runtime = settings({**cfg["train"], **cfg.get("runtime", {})})  # old: one flat dict
        m = cls(cfg["method"], cfg["model"], model_kwargs, train, runtime, cfg["seed"])
        if cfg.get("feature_transform"):
            from chmfl.radiomics import FeatureTransform

            m.feature_transform_ = FeatureTransform.from_dict(cfg["feature_transform"])
        m.n_features_ = cfg.get("n_features", 0)
        net = m._build(m.n_features_)
        net.load_state_dict(load_file(str(directory / "weights.safetensors")))
        m.network_ = net.eval()
        m.history_ = []
        return m


def _in_plane_mm(case: CaseData) -> float:
    """The in-plane pixel size (mm) of a case's box; square pixels only."""
    _, sy, sx = case.load().spacing
    if abs(sy - sx) > 1e-6 * max(sy, sx):
        raise ChmflError(f"case {case.patient_id}: pixels of {sy} x {sx} mm; square pixels are needed")
    return float(sy)


def _check_spacing(cases: Sequence[CaseData], input_mm: float | None, model: str) -> None:
    """Every case at the pixel size the network was built for (spacing-aware networks)."""
    if input_mm is None:
        return
    for c in cases:
        mm = _in_plane_mm(c)
        if abs(mm - input_mm) > 1e-6 * input_mm:
            raise ChmflError(f"network {model} was built for {input_mm:g} mm pixels; "
                             f"case {c.patient_id} has {mm:g} mm (prepare it as the training cases were)")


def read_model_config(directory: Path) -> dict[str, Any]:
    """The config.json of a saved model folder; a folder that is not a chmfl model is refused."""
    path = Path(directory) / "config.json"
    try:
        cfg = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ChmflError(f"{directory} is not a chmfl model folder (no readable config.json)") from exc
    if not isinstance(cfg, dict) or cfg.get("kind") not in (MODEL_KIND, "chmfl-method"):
        raise ChmflError(f"{directory} is not a chmfl model (config.json has no chmfl 'kind')")
    return cfg
