"""The comparators' own training settings (CNLPC: hn_cnn's SGD, class-weighted BCE, batches
with the last one dropped, flips + rotations; V-Net: the Dice loss), their place among an
experiment's settings, and the CT-only checks of the method layer."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from tests.synthetic import make_cases, neural_method

from chmfl.cv.experiment import Experiment
from chmfl.cv.runner import RunOptions, fold_settings
from chmfl.errors import ChmflError
from chmfl.methods.registry import METHODS, method_train
from chmfl.methods.runtime import RuntimeConfig
from chmfl.methods.spec import MethodRun
from chmfl.methods.train_config import TrainConfig
from chmfl.methods.trainer import epoch_batches, make_optimizer


def test_sgd_and_its_settings():
    net = torch.nn.Linear(3, 2)
    cfg = TrainConfig(optimizer="sgd", lr=0.05, momentum=0.9, weight_decay=1e-4)
    opt = make_optimizer(net, cfg, RuntimeConfig())
    assert isinstance(opt, torch.optim.SGD)
    group = opt.param_groups[0]
    assert (group["lr"], group["momentum"], group["weight_decay"], group["dampening"]) == (0.05, 0.9, 1e-4, 0)
    assert isinstance(make_optimizer(net, TrainConfig(), RuntimeConfig()), torch.optim.Adam)
    with pytest.raises(ChmflError, match="optimizer"):
        TrainConfig(optimizer="lbfgs")
    assert TrainConfig.from_dict({"class_weights": [0.7, 3.7]}).class_weights == (0.7, 3.7)
    with pytest.raises(ChmflError, match="class_weights"):
        TrainConfig(class_weights=[1.0])


def test_drop_last_skips_the_incomplete_batch():
    gen = torch.Generator().manual_seed(0)
    assert [len(b) for b in epoch_batches(10, 4, gen, 0, 1)] == [4, 4, 2]
    assert [len(b) for b in epoch_batches(10, 4, gen, 0, 1, drop_last=True)] == [4, 4]
    assert [len(b) for b in epoch_batches(3, 4, gen, 0, 1, drop_last=True)] == [3]  # never empty


def test_method_science_overrides_the_experiments_and_the_command_line_overrides_both():
    run = MethodRun("cnlpc")
    exp = Experiment("t", "t", (run,), train={"lr": 1e-4, "batch_size": 1, "epochs": 200})
    cfg, _ = fold_settings(exp, run, RunOptions(train={"batch_size": 8}))
    assert cfg.optimizer == "sgd" and cfg.lr == 0.05 and cfg.epochs == 200
    assert cfg.batch_size == 8 and cfg.class_weights == (0.7, 3.7) and cfg.drop_last
    assert run.label == "cnlpc"  # the method's own science is not a variant
    variant = MethodRun("cnlpc", {"lr": 0.01})
    assert fold_settings(Experiment("t", "t", (variant,)), variant, RunOptions())[0].lr == 0.01
    assert method_train("vnet")["seg_loss"] == "dice" and method_train("vnet-ce")["seg_loss"] == "ce"
    assert METHODS["cnlpc-petct"].kwargs["model_kwargs"] == {"modality": "petct"}
    assert fold_settings(Experiment("t", "t", (MethodRun("chmfl"),)), MethodRun("chmfl"), RunOptions())[0] == TrainConfig()


def test_cnlpc_trains_with_its_sources_settings_and_records_the_pixel_size():
    cases = make_cases(6, shape=(8, 16, 16))
    m = neural_method("cnlpc", "cnlpc", None, {**METHODS["cnlpc"].train, "epochs": 2, "batch_size": 4},
                      seed=0, progress=False).fit(cases)
    assert m.model_kwargs["input_mm"] == 4.0  # from the cases, stored with the model
    assert len(m.history_) == 2 and np.isfinite(m.history_[-1]["loss"])
    p = m.predict_proba(make_cases(2, shape=(8, 16, 16), seed=7))
    assert p.shape == (2,) and np.all((p > 0) & (p < 1))
    other = make_cases(2, shape=(8, 16, 16))
    other[0].arrays.spacing = (2.0, 2.0, 2.0)
    with pytest.raises(ChmflError, match="4 mm pixels"):
        m.predict_proba(other)


def test_vnet_trains_with_the_dice_loss():
    cases = make_cases(2, shape=(16, 16, 16))
    m = neural_method("vnet", "vnet", None, {"epochs": 1, "batch_size": 2, "seg_loss": "dice"}, seed=0,
                      progress=False).fit(cases)
    assert 0 < m.history_[0]["seg_loss"] < 1  # 1 - Dice, not a cross-entropy
