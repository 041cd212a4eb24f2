"""The neural training loop behind every network: shapes, determinism, exact resume, safe save/load."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from tests.synthetic import make_cases, neural_method

from chmfl.errors import ChmflError
from chmfl.methods.neural import NeuralMethod

FAST = {"epochs": 2, "batch_size": 2, "precision": "32", "patience": 50}
# ~0.5 M parameters instead of 12 M: the loop is what is tested here, not the network
TINY = {"widths": (4, 8, 16, 32, 64), "decoder_convs": (1, 1, 1, 1), "decoder_kernel": 3}


def _method(tmp_path=None, model="chmfl", **train):
    return neural_method("chmfl", model, TINY, {**FAST, **train}, seed=3,
                        workdir=tmp_path, progress=False)


def test_fit_predict_shapes_and_masks():
    cases = make_cases(6)
    m = _method().fit(cases)
    out = m.predict_all(cases)
    assert out["probability"].shape == (6,)
    assert np.all((out["probability"] >= 0) & (out["probability"] <= 1))
    assert out["mask"].shape == (6, 16, 16, 16) and out["mask"].dtype == np.uint8
    assert out["features"].shape[0] == 6
    assert len(m.history_) == 2 and {"loss", "cls_loss", "seg_loss", "train_auc"} <= set(m.history_[0])


def test_same_command_twice_gives_identical_predictions():
    cases = make_cases(6)
    p1 = _method(augment=True).fit(cases).predict_proba(cases)
    p2 = _method(augment=True).fit(cases).predict_proba(cases)
    np.testing.assert_array_equal(p1, p2)


def test_resume_after_interruption_matches_uninterrupted(tmp_path):
    cases = make_cases(6)
    full = _method(tmp_path / "a", epochs=3, augment=True).fit(cases).predict_proba(cases)
    _method(tmp_path / "b", epochs=2, augment=True).fit(cases)  # "interrupted" after epoch 2
    assert (tmp_path / "b" / "checkpoint.pt").is_file()
    resumed_m = _method(tmp_path / "b", epochs=3, augment=True).fit(cases)
    assert [h["epoch"] for h in resumed_m.history_] == [1, 2, 3]
    np.testing.assert_array_equal(full, resumed_m.predict_proba(cases))


def test_save_load_round_trip(tmp_path):
    cases = make_cases(4)
    m = _method().fit(cases)
    m.save(tmp_path / "model")
    assert sorted(p.name for p in (tmp_path / "model").iterdir()) == ["config.json", "weights.safetensors"]
    m2 = NeuralMethod.load(tmp_path / "model")
    np.testing.assert_allclose(m.predict_proba(cases), m2.predict_proba(cases), atol=1e-6)


def test_model_saved_with_one_flat_train_dict_still_loads(tmp_path):
    """Model folders from before the science/runtime split hold one flat ``train`` dict:
    its keys are routed by name."""
    import json

    cases = make_cases(4)
    m = _method(bn_eval="sample").fit(cases)
    m.save(tmp_path / "model")
    path = tmp_path / "model" / "config.json"
    cfg = json.loads(path.read_text())
    assert set(cfg["train"]) & set(cfg["runtime"]) == set()
    cfg["train"] = {**cfg["train"], **cfg.pop("runtime")}  # the old layout
    path.write_text(json.dumps(cfg))
    old = NeuralMethod.load(tmp_path / "model")
    assert old.train == m.train and old.runtime == m.runtime and old.train.bn_eval == "sample"
    np.testing.assert_array_equal(old.predict_proba(cases), NeuralMethod.load(tmp_path / "model").predict_proba(cases))


def test_not_a_model_folder_is_refused(tmp_path):
    (tmp_path / "config.json").write_text('{"hello": 1}')
    with pytest.raises(ChmflError, match="not a chmfl model"):
        NeuralMethod.load(tmp_path)


def test_early_stopping_on_flat_loss():
    cases = make_cases(4)
    m = _method(epochs=30, patience=2, min_delta=0.9, lr=0.0).fit(cases)  # lr 0: the loss cannot drop 90%
    assert len(m.history_) == 3


def test_classifier_only_network_ignores_mask_and_w():
    cases = make_cases(4)
    m = neural_method("cnn3d-petct", "cnn3d", {"modality": "petct"}, FAST, progress=False).fit(cases)
    assert m.history_[0]["seg_loss"] == 0.0
    assert "mask" not in m.predict_all(cases)


def test_bf16_request_runs(monkeypatch):
    torch.manual_seed(0)
    cases = make_cases(2)
    m = _method(epochs=1, precision="bf16").fit(cases)
    assert np.isfinite(m.predict_proba(cases)).all()


def test_bn_sample_statistics_equal_training_mode_and_leave_running_stats():
    from chmfl.data.tensors import stack_cases
    from chmfl.methods.inference import predict_network
    from chmfl.models import build_model

    torch.manual_seed(0)
    net = build_model("chmfl", dropout=0.0, **TINY)
    data = stack_cases(make_cases(3, shape=(32, 32, 32)))  # > 1 voxel at the deepest level
    net.train()
    with torch.no_grad():  # batch 1 in train mode = normalisation by the sample's own statistics
        expected = [torch.softmax(net(data.pet[i:i + 1], data.ct[i:i + 1]).logits, 1)[0, 1].item()
                    for i in range(3)]
    running = {k: v.clone() for k, v in net.state_dict().items() if "running" in k}
    got = predict_network(net, data, bn_eval="sample")["probability"]
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    for k, v in net.state_dict().items():
        if "running" in k:
            assert torch.equal(v, running[k]), k
    assert not net.training and all(not m.training for m in net.modules())
    default = predict_network(net, data)["probability"]
    assert not np.allclose(default, got)  # running averages differ from per-sample statistics


def test_fit_records_train_fold_diagnostics():
    m = _method(bn_eval="sample").fit(make_cases(6, shape=(32, 32, 32)))
    d = m.diagnostics_
    assert set(d) == {"train_auc_last_epoch", "train_auc_eval_running", "train_auc_eval_sample"}
    assert all(0.0 <= v <= 1.0 for v in d.values())


def test_per_sample_bn_falls_back_on_one_voxel_maps():
    """16^3 input: the deepest map has one voxel per channel (no sample statistics); that
    BatchNorm uses its running averages, the others the case's own, and nothing is updated."""
    from chmfl.data.tensors import stack_cases
    from chmfl.methods.inference import predict_network
    from chmfl.models import build_model

    torch.manual_seed(0)
    net = build_model("chmfl", dropout=0.0, **TINY)
    data = stack_cases(make_cases(2, shape=(16, 16, 16)))
    before = {k: v.clone() for k, v in net.state_dict().items()}
    p_sample = predict_network(net, data, bn_eval="sample")["probability"]
    p_running = predict_network(net, data, bn_eval="running")["probability"]
    assert np.isfinite(p_sample).all() and not np.allclose(p_sample, p_running)
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())


@pytest.mark.parametrize("model", ["cnn2d", "cnlpc", "chmfl"])
def test_channels_last_trains_2d_and_3d_networks(model):
    """channels_last_3d applies to 3D-conv weights only: networks with 2D convs train too."""
    kwargs = TINY if model == "chmfl" else {}
    m = neural_method(model, model, kwargs, {**FAST, "channels_last": True, "epochs": 1}, seed=0,
                      progress=False)
    p = m.fit(make_cases(4, shape=(16, 32, 32))).predict_proba(make_cases(2, shape=(16, 32, 32), seed=9))
    assert p.shape == (2,) and np.isfinite(p).all()


def test_model_trained_for_cuda_predicts_on_a_cpu_machine(monkeypatch):
    """A saved model whose settings name the GPU still predicts where there is none."""
    m = _method().fit(make_cases(4))
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    m.runtime = m.runtime.replace(accelerator="cuda")
    assert m._predict_device() == "cpu"
    assert m.predict_proba(make_cases(2, seed=5)).shape == (2,)


def test_epoch_sums_on_the_device_equal_per_step_host_sums():
    """Trainer.epoch keeps its loss sums and probabilities on the device until the epoch ends;
    the numbers are exactly those of summing Python floats after every step."""
    from chmfl.data.tensors import augment
    from chmfl.methods.runtime import settings
    from chmfl.methods.trainer import Trainer, epoch_batches
    from chmfl.models import build_model

    data = neural_method("chmfl", "chmfl", TINY, FAST)._tensors(make_cases(6))
    cfg, runtime = settings({**FAST, "augment": True})

    def run(loop):
        torch.manual_seed(0)
        return loop(Trainer(build_model("chmfl", **TINY), cfg, runtime, seed=0, progress=False))

    def host_loop(trainer):
        trainer.model.train()
        sums, n = {"loss": 0.0, "cls_loss": 0.0, "seg_loss": 0.0}, 0
        for idx in epoch_batches(len(data), cfg.batch_size, trainer.gen, 0, 1):
            b = augment(data.batch(idx), trainer.gen)
            loss, parts, out = trainer.step(b)
            n += len(idx)
            sums["loss"] += float(loss.detach()) * len(idx)
            for k, v in parts.items():
                sums[k] += float(v) * len(idx)
        return {k: v / n for k, v in sums.items()}

    device = run(lambda trainer: trainer.epoch(data))
    host = run(host_loop)
    assert {k: device[k] for k in host} == host  # exact, not approximate
    assert device["seg_loss"] > 0 and 0.0 <= device["train_auc"] <= 1.0


def test_unknown_compile_mode_is_refused():
    from chmfl.methods.runtime import RuntimeConfig

    with pytest.raises(ChmflError, match="compile_mode must be one of"):
        RuntimeConfig().replace(compile_mode="fastest")


@pytest.mark.slow
def test_compiled_reduce_overhead_trains_like_eager(monkeypatch):
    """compile_mode="reduce-overhead" (CUDA graphs on a GPU; inductor alone on a CPU) trains to
    the eager loop's losses up to float rounding, marking each step for the graph trees."""
    marks = []
    real = torch.compiler.cudagraph_mark_step_begin
    monkeypatch.setattr(torch.compiler, "cudagraph_mark_step_begin", lambda: (marks.append(1), real()))
    cases = make_cases(4)
    eager = neural_method("cnn3d-petct", "cnn3d", {"modality": "petct"}, FAST, seed=0,
                          progress=False).fit(cases)
    assert not marks
    comp = neural_method("cnn3d-petct", "cnn3d", {"modality": "petct"},
                         {**FAST, "compile": True, "compile_mode": "reduce-overhead"}, seed=0,
                         progress=False).fit(cases)
    assert len(marks) == 2 * 2  # 2 epochs x 2 batches of 2
    for a, b in zip(eager.history_, comp.history_):
        assert b["loss"] == pytest.approx(a["loss"], rel=1e-3)  # same dropout masks as eager
    np.testing.assert_allclose(comp.predict_proba(cases), eager.predict_proba(cases), atol=5e-3)


@pytest.mark.parametrize("model, kwargs", [("chmfl", TINY), ("cnn3d", {"modality": "petct"})])
def test_train_step_reads_nothing_back_from_the_device(monkeypatch, model, kwargs):
    """A training step's forward, Eq. (1) and backward never turn a tensor into a Python
    number: on a GPU each such read makes the host wait for the device before it may queue the
    next step. (Adam reads its step counters, which PyTorch keeps on the host.) With the speed
    options a GPU gets by default (``device_defaults("cuda")``; the CPU's in-place activated
    BatchNorm checks its gammas on the host, which costs nothing where there is no queue)."""
    from chmfl.accel.options import device_defaults
    from chmfl.methods.runtime import settings
    from chmfl.methods.trainer import Trainer

    method = neural_method(model, model, kwargs, FAST)
    data = method._tensors(make_cases(2))
    train, runtime = settings(FAST)
    trainer = Trainer(method._build(), train, runtime.replace(**device_defaults("cuda")), seed=0, progress=False)
    opt = trainer.optimizer
    reads, in_adam = [], []
    for name in ("item", "tolist", "__float__", "__int__", "__bool__"):
        real = getattr(torch.Tensor, name)
        monkeypatch.setattr(torch.Tensor, name, lambda self, *a, _n=name, _r=real:
                            (in_adam or reads.append(_n), _r(self, *a))[1])
    adam_step = opt.step
    monkeypatch.setattr(opt, "step", lambda: (in_adam.append(1), adam_step(), in_adam.clear()))
    trainer.model.train()
    trainer.step(data)
    monkeypatch.undo()
    assert reads == []
