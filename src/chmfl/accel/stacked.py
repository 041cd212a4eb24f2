"""K fold models trained as one: ``torch.func`` stacks their parameters and buffers, and
``vmap`` runs the K training steps (forward, Eq. (1), backward) as one batched pass, each fold
on its own patients (PyTorch maps the K convolutions to one grouped convolution). One Adam over
the stacked tensors is K Adams: its update is elementwise.

This is the issue's "stacked fold models with torch.func" idea, built as a measurement
(``benchmarks/bench_stacked.py`` against K separate steps), not as a training mode: the loop
(``methods.trainer.Trainer``) trains one fold per process, and ``--parallel-folds K``
runs K such processes. What a training mode would add: per-fold early stopping and epoch
lengths (a fold that stops must stop updating), per-fold checkpoints. Limits of the stacked
step: ``fast_wgrad`` / ``inplace_abn`` (custom autograd functions without vmap rules) and
channels_last_3d (the stacked inputs are 6-D) are off; dropout draws differ from separate runs
(``randomness="different"``: each fold its own masks, from one generator); under bf16 autocast
BatchNorm gets fp32 input (vmap's batch_norm rule refuses bf16 input with fp32 statistics,
torch 2.13), one cast more per BatchNorm than a separate bf16 step pays.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

import torch
from torch import nn

from chmfl.data.tensors import CaseTensors
from chmfl.models.losses import eq1_terms


class StackedFolds:
    """``nets`` (same architecture, each its own weights) as one stacked model on ``device``."""

    def __init__(self, nets: Sequence[nn.Module], lr: float = 1e-4, weight_decay: float = 0.0,
                 seg_weight: float = 0.5, seg_reduction: str = "mean", device: str | torch.device = "cpu",
                 autocast_dtype: torch.dtype | None = None):
        from torch.func import stack_module_state

        self.k = len(nets)
        self.device = torch.device(device)
        for net in nets:
            net.train()
        self.base = copy.deepcopy(nets[0]).to("meta")
        if autocast_dtype is not None:
            for m in self.base.modules():
                if isinstance(m, nn.modules.batchnorm._BatchNorm):
                    m.register_forward_pre_hook(_float_input)
        params, buffers = stack_module_state([n.to(self.device) for n in nets])
        self.params = {name: p.detach().requires_grad_() for name, p in params.items()}
        self.buffers = buffers
        self.seg_weight, self.seg_reduction = seg_weight, seg_reduction
        self.autocast_dtype = autocast_dtype
        self.optimizer = torch.optim.Adam(self.params.values(), lr=lr, weight_decay=weight_decay)

    def _loss(self, params, buffers, pet, ct, mask, labels, features):
        from torch.func import functional_call

        with torch.autocast(self.device.type, dtype=self.autocast_dtype or torch.float32,
                            enabled=self.autocast_dtype is not None):
            out = functional_call(self.base, (params, buffers), (pet, ct),
                                  {"mask": mask, "features": features})
        total, cls, seg = eq1_terms(out, labels, mask, self.seg_weight, self.seg_reduction)
        return total, torch.stack([cls, seg])

    def step(self, batches: Sequence[CaseTensors]) -> torch.Tensor:
        """One optimiser step of every fold, fold k on ``batches[k]``; returns the K total
        losses (on the device; reading them is the caller's choice of a sync)."""
        grads, total = self.gradients(batches)
        for name, p in self.params.items():
            p.grad = grads[name]
        self.optimizer.step()
        return total

    def gradients(self, batches: Sequence[CaseTensors]) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        """Every fold's gradients (stacked, by parameter name) and total loss on its batch;
        BatchNorm statistics move as in a training step."""
        from torch.func import grad_and_value, vmap

        if len(batches) != self.k:
            raise ValueError(f"{len(batches)} batches for {self.k} folds")
        stack = lambda key: (None if getattr(batches[0], key) is None  # noqa: E731
                             else torch.stack([getattr(b, key) for b in batches]).to(self.device))
        inputs = [stack(key) for key in ("pet", "ct", "mask", "labels", "features")]
        in_dims = (0, 0, *(None if t is None else 0 for t in inputs))
        fn = vmap(grad_and_value(self._loss, has_aux=True), in_dims=in_dims, randomness="different")
        grads, (total, _) = fn(self.params, self.buffers, *inputs)
        return grads, total

    def fold_state(self, k: int) -> dict[str, torch.Tensor]:
        """Fold k's state dict (parameters and buffers), as its own network would have it."""
        return {**{n: p[k].detach() for n, p in self.params.items()},
                **{n: b[k] for n, b in self.buffers.items()}}


def _float_input(module, args):
    return (args[0].float(), *args[1:])


def separate_steps(nets: Sequence[nn.Module], optimizers: Sequence[torch.optim.Optimizer],
                   batches: Sequence[CaseTensors], seg_weight: float = 0.5, seg_reduction: str = "mean",
                   device: str | torch.device = "cpu", autocast_dtype: torch.dtype | None = None) -> list[float]:
    """The reference: one ordinary training step per fold, one after another."""
    device = torch.device(device)
    losses = []
    for net, opt, b in zip(nets, optimizers, batches):
        net.train()
        b = b.to(device)
        with torch.autocast(device.type, dtype=autocast_dtype or torch.float32, enabled=autocast_dtype is not None):
            out = net(b.pet, b.ct, mask=b.mask, features=b.features)
        total, _, _ = eq1_terms(out, b.labels, b.mask, seg_weight, seg_reduction)
        opt.zero_grad(set_to_none=True)
        total.backward()
        opt.step()
        losses.append(total.detach())
    return losses
