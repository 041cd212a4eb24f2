"""Stacked fold models (torch.func): K folds in one vmapped pass give each fold the loss,
gradients and BatchNorm statistics of its own separate step (up to float rounding), and the
stacked Adam step trains each fold on its own patients."""

from __future__ import annotations

import copy

import pytest
import torch

from chmfl.accel.stacked import StackedFolds, separate_steps
from chmfl.bench.networks import synthetic_case
from chmfl.models import build_model

SMALL = {"widths": (4, 8, 16, 32, 64), "decoder_convs": (2, 2, 2, 2), "decoder_kernel": 3, "dropout": 0.0}


def _nets(name: str, kwargs: dict, k: int) -> list[torch.nn.Module]:
    nets = []
    for seed in range(k):
        torch.manual_seed(seed)
        nets.append(build_model(name, **kwargs))
    return nets


@pytest.mark.parametrize(("name", "kwargs"), [("chmfl", SMALL), ("cnn3d", {"dropout": 0.0}),
                                              ("cnlpc", {"dropout": (0.0, 0.0, 0.0)})])
def test_stacked_folds_match_separate_steps(name, kwargs):
    k, shape = 3, (16, 16, 16)
    nets = _nets(name, kwargs, k)
    refs = [copy.deepcopy(n) for n in nets]
    opts = [torch.optim.Adam(n.parameters(), lr=1e-3) for n in refs]
    stacked = StackedFolds(nets, lr=1e-3)
    # batch 4: BatchNorm over 2 values at the deepest 1-voxel level would amplify rounding
    batches = [synthetic_case(shape, seed=j, batch=4) for j in range(k)]
    for b in batches:
        b.labels[:] = torch.arange(4) % 2
    grads, got = stacked.gradients(batches)
    want = separate_steps(refs, opts, batches)  # also takes the reference's first Adam step
    torch.testing.assert_close(got, torch.stack(want), rtol=1e-5, atol=1e-6)
    for j, ref in enumerate(refs):
        for key, p in ref.named_parameters():
            scale = float(p.grad.abs().max())  # float rounding relative to the tensor's scale
            torch.testing.assert_close(grads[key][j], p.grad, rtol=1e-4, atol=1e-5 * max(scale, 1.0),
                                       msg=f"fold {j} grad {key}")
        state = stacked.fold_state(j)
        for key, b in ref.named_buffers():  # running statistics after one training step
            torch.testing.assert_close(state[key], b, rtol=1e-5, atol=1e-6, msg=f"fold {j} {key}")
    for name_, p in stacked.params.items():  # the stacked Adam step on the same gradients
        p.grad = grads[name_]
    stacked.optimizer.step()
    # second step: each fold's loss after its own update (Adam amplifies rounding in gradients
    # that BatchNorm makes ~0, e.g. conv biases, so the losses agree less tightly than step 1)
    batches = [synthetic_case(shape, seed=10 + j, batch=4) for j in range(k)]
    got = stacked.step(batches)
    want = separate_steps(refs, opts, batches)
    torch.testing.assert_close(got, torch.stack(want), rtol=2e-3, atol=1e-5)
    assert len({round(float(v), 4) for v in got.detach()}) == k  # K different models on K different batches


def test_stacked_refuses_a_wrong_number_of_batches():
    stacked = StackedFolds(_nets("cnlpc", {}, 2))
    with pytest.raises(ValueError, match="1 batches for 2 folds"):
        stacked.step([synthetic_case((16, 16, 16))])


def test_stacked_bf16_autocast_runs_and_matches_separate_steps():
    """bf16 autocast (what a GPU trains in): BatchNorm gets fp32 input in the stacked step
    (vmap's batch_norm rule refuses bf16 with fp32 statistics); losses agree to bf16 precision."""
    kwargs = {"dropout": 0.0}
    batches = [synthetic_case((32, 32, 32), seed=j, batch=2) for j in range(2)]
    for b in batches:
        b.labels[:] = torch.tensor([0, 1])
    stacked = StackedFolds(_nets("cnn3d", kwargs, 2), autocast_dtype=torch.bfloat16)
    nets = _nets("cnn3d", kwargs, 2)
    want = separate_steps(nets, [torch.optim.Adam(n.parameters()) for n in nets], batches,
                          autocast_dtype=torch.bfloat16)
    torch.testing.assert_close(stacked.step(batches).detach(), torch.stack(want), rtol=2e-2, atol=1e-3)
