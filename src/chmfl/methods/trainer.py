"""``Trainer``: the neural training loop -- Eq. (1), Adam (or SGD), early stopping on the total loss, a
checkpoint per epoch, exact resume, seeds -- in one class. Devices and precision come from
Lightning Fabric (CPU, one GPU, or DDP over many); the speed options from ``chmfl.accel``.

Set-up (``__init__``): threads and determinism, the Fabric engine, the speed options decided for
its device (``runtime``: what the fold records), seeds, the speed options on the network, Adam, the checkpoint to resume from, then Fabric's wrappers. ``step`` is one
optimiser step (what ``chmfl bench`` times), ``epoch`` one pass over the cases, ``fit`` the
loop, ``release`` the trained network without the speed options, on the CPU, in eval mode.

Resume is exact: the checkpoint holds the model, the optimiser, the loop state and both RNG
states (torch's global one, used by dropout, and the generator that orders batches and draws
augmentations), so an interrupted fold ends with the same weights as an uninterrupted one.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from chmfl.accel import options as accel
from chmfl.data.tensors import CaseTensors, augment
from chmfl.fsutil import atomic_path
from chmfl.methods.epoch_hook import epoch_finished
from chmfl.methods.inference import forward, positive_score, train_auc
from chmfl.methods.runtime import RuntimeConfig, resolve_accelerator, resolve_precision
from chmfl.methods.train_config import TrainConfig
from chmfl.models.losses import eq1_cox_terms, eq1_terms

log = logging.getLogger(__name__)
CHECKPOINT = "checkpoint.pt"
LOSS_KEYS = ("loss", "cls_loss", "seg_loss")  # the epoch sums of ``Trainer.epoch``, in this order


@dataclass
class LoopState:
    """What the loop carries from epoch to epoch (and through a checkpoint)."""

    epoch: int = 0  # epochs completed
    best_loss: float = math.inf
    bad_epochs: int = 0
    stopped: bool = False
    history: list[dict] = field(default_factory=list)

    def update(self, loss: float, cfg: TrainConfig) -> None:
        """Early stopping: 'training was terminated when no further changes in the total loss'."""
        if loss < self.best_loss * (1.0 - cfg.min_delta):
            self.best_loss, self.bad_epochs = loss, 0
        else:
            self.bad_epochs += 1
            self.best_loss = min(self.best_loss, loss)
        if self.epoch >= cfg.min_epochs and self.bad_epochs >= cfg.patience:
            self.stopped = True


def make_fabric(runtime: RuntimeConfig):
    """A Lightning Fabric for these runtime settings (device, number of devices, precision)."""
    from lightning.fabric import Fabric

    accelerator = resolve_accelerator(runtime.accelerator)
    precision = resolve_precision(runtime.precision, accelerator)
    strategy = "ddp" if (isinstance(runtime.devices, int) and runtime.devices > 1) else "auto"
    fabric = Fabric(accelerator=accelerator, devices=runtime.devices, precision=precision, strategy=strategy)
    if strategy == "ddp":
        fabric.launch()
    return fabric


def epoch_batches(n: int, batch_size: int, gen: torch.Generator, rank: int, world: int,
                  drop_last: bool = False) -> list[torch.Tensor]:
    """This rank's batches of one epoch. Under DDP every rank needs the same number of steps
    (each step all-reduces the gradients): the shuffled order is padded by wrapping around to
    a multiple of ``world`` (as torch's DistributedSampler does) before it is dealt out.
    ``drop_last``: an incomplete last batch is skipped (unless it is the only one)."""
    order = torch.randperm(n, generator=gen)
    if world > 1 and n % world:
        order = torch.cat([order, order[: world - n % world]])
    order = order[rank::world]
    batches = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    if drop_last and len(batches) > 1 and len(batches[-1]) < batch_size:
        batches.pop()
    return batches


def make_optimizer(model: nn.Module, cfg: TrainConfig, runtime: RuntimeConfig) -> torch.optim.Optimizer:
    """The paper's Adam (``chmfl.accel``'s, fused where the speed options say so), or SGD with
    momentum where the method's science says so (``cfg.optimizer="sgd"``: hn_cnn's, CNLPC)."""
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    return accel.make_optimizer(model, cfg.lr, cfg.weight_decay, runtime.speed)


class Trainer:
    """One network's training (module docstring). ``workdir``: where the per-epoch checkpoint
    lives (resumed from when there); None keeps none."""

    def __init__(self, model: nn.Module, cfg: TrainConfig, runtime: RuntimeConfig, seed: int,
                 workdir: Path | None = None, progress: bool = True) -> None:
        self.cfg, self.progress = cfg, progress
        if runtime.num_threads:
            torch.set_num_threads(runtime.num_threads)
        # process-wide in torch: set either way, so a non-deterministic run after a deterministic
        # one (several methods in one process) really is allowed the faster kernels
        torch.use_deterministic_algorithms(runtime.deterministic, warn_only=True)
        self.fabric = make_fabric(runtime)
        # "auto" speed options decided for the device the network trains on (what is recorded)
        self.runtime = runtime = runtime.resolved(self.fabric.device.type)
        torch.manual_seed(seed)
        self.gen = torch.Generator().manual_seed(seed + 1)
        self.memory_format = runtime.speed.memory_format
        model = accel.apply(model, runtime.speed)
        optimizer = make_optimizer(model, cfg, runtime)
        self.checkpoint = Path(workdir) / CHECKPOINT if workdir else None
        self.state = LoopState()
        if self.checkpoint is not None and self.checkpoint.is_file():
            self.state = self._load_checkpoint(model, optimizer)
            log.info("resuming from %s after epoch %d", self.checkpoint, self.state.epoch)
        self.model, self.optimizer = self.fabric.setup(model, optimizer)

    @property
    def device(self) -> torch.device:
        return self.fabric.device

    def to_device(self, data: CaseTensors) -> CaseTensors:
        """``data`` where the loop keeps it: on the training device with ``data_on_device``."""
        return data.to(self.device) if self.runtime.data_on_device else data

    # --- one step, one epoch ----------------------------------------------------------------
    def step(self, b: CaseTensors):
        """One optimiser step on batch ``b``: forward, Eq. (1), backward, Adam; returns the loss,
        its parts ``{"cls_loss", "seg_loss"}`` and the network output, all still on the training
        device: nothing here waits for the device (``chmfl bench`` times exactly this). With
        ``objective="cox"`` the DM term of Eq. (1) is the Cox partial likelihood of the batch's
        risk sets (``eq1_cox_terms``; "cls_loss" is then that term)."""
        accel.mark_step(self.runtime.speed)  # a new step: the last one's outputs may go
        out = forward(self.model, b, self.device, self.memory_format)
        mask = None if b.mask is None else b.mask.to(self.device)
        cfg = self.cfg
        if cfg.objective == "cox":
            loss, cls, seg = eq1_cox_terms(out, b.time, b.event, mask, cfg.seg_weight, cfg.seg_reduction, cfg.seg_loss)
        else:
            y = b.labels.to(self.device)
            loss, cls, seg = eq1_terms(out, y, mask, cfg.seg_weight, cfg.seg_reduction, cfg.seg_loss,
                                       cfg.class_weights)
        self.optimizer.zero_grad(set_to_none=True)
        self.fabric.backward(loss)
        self.optimizer.step()
        return loss, {"cls_loss": cls.detach(), "seg_loss": seg.detach()}, out

    def epoch(self, data: CaseTensors) -> dict:
        """One pass over the training cases; returns the epoch's mean losses and training AUC
        (of P(DM), or of a one-output network's risk against the event indicator).

        The loss sums and training probabilities stay on the device until the epoch ends (one
        host copy per epoch, not three per step: each copy would make the host wait for the GPU
        before it may queue the next step). The sums are float64, as Python's floats were, so
        the numbers are the same as summing per step on the host."""
        fabric, cfg = self.fabric, self.cfg
        self.model.train()
        acc = torch.zeros(len(LOSS_KEYS), dtype=torch.float64, device=self.device)
        host_labels = data.labels.cpu()  # the cases may be on the GPU (``data_on_device``)
        labels, probs, n = [], [], 0
        for idx in epoch_batches(len(data), cfg.batch_size, self.gen, fabric.global_rank, fabric.world_size,
                                 cfg.drop_last):
            b = data.batch(idx)
            if cfg.augment:
                b = augment(b, self.gen, cfg.augmentation)
            loss, parts, out = self.step(b)
            k = len(idx)
            n += k
            acc += torch.stack([loss.detach(), parts["cls_loss"], parts["seg_loss"]]).double() * k
            labels += host_labels[idx].tolist()
            probs.append(positive_score(out.logits.detach()))
        probs = torch.cat(probs) if probs else acc.new_zeros(0)
        if fabric.world_size > 1:  # every rank decides early stopping on the same, whole-epoch numbers
            acc, n, labels, probs = self._gather_epoch(acc, n, labels, probs)
        stats = {key: v / max(n, 1) for key, v in zip(LOSS_KEYS, acc.tolist())}
        stats["train_auc"] = train_auc(labels, probs.tolist())
        return stats

    def _gather_epoch(self, acc: torch.Tensor, n: int, labels: list, probs: torch.Tensor):
        """Loss sums, case counts, labels and probabilities of all ranks (DDP; on the training
        device, as NCCL needs)."""
        totals = self.fabric.all_reduce(torch.cat([acc, acc.new_tensor([n])]), reduce_op="sum")
        mine = torch.stack([acc.new_tensor(labels), probs.double()])
        gathered = self.fabric.all_gather(mine).cpu()  # (world, 2, steps)
        flat = gathered.reshape(-1, 2, gathered.shape[-1]).transpose(0, 1).reshape(2, -1)
        return totals[:-1], int(totals[-1]), [int(v) for v in flat[0].tolist()], flat[1]

    # --- the loop -----------------------------------------------------------------------------
    def fit(self, data: CaseTensors) -> tuple[nn.Module, list[dict]]:
        """Train until ``cfg.epochs`` or early stopping; returns ``release()`` and the history."""
        from tqdm.auto import tqdm

        data = self.to_device(data)
        state, cfg = self.state, self.cfg
        bar = tqdm(total=cfg.epochs, initial=state.epoch, desc="epochs", leave=False,
                   disable=not self.progress or self.fabric.global_rank != 0)
        while state.epoch < cfg.epochs and not state.stopped:
            t0 = time.perf_counter()
            stats = self.epoch(data)
            state.epoch += 1
            state.update(stats["loss"], cfg)
            state.history.append({"epoch": state.epoch, **stats, "lr": cfg.lr,
                                  "seconds": time.perf_counter() - t0})
            epoch_finished(state.epoch, cfg.epochs, state.history[-1]["seconds"])  # the run's ETA (cv.eta)
            if self.checkpoint is not None and self.fabric.global_rank == 0:
                self.save_checkpoint(self.checkpoint)
            bar.update(1)
            bar.set_postfix(loss=f"{stats['loss']:.4f}", train_auc=f"{stats['train_auc']:.2f}")
        bar.close()
        return self.release(), state.history

    def release(self) -> nn.Module:
        """The trained network without the speed options, on the CPU, in eval mode."""
        net = accel.remove(unwrap(self.model))
        return net.to("cpu", memory_format=torch.contiguous_format).eval()

    # --- checkpoints --------------------------------------------------------------------------
    def save_checkpoint(self, path: Path) -> None:
        s = self.state
        payload = {
            "model": unwrap(self.model).state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "loop": {"epoch": s.epoch, "best_loss": s.best_loss, "bad_epochs": s.bad_epochs,
                     "stopped": s.stopped, "history": s.history},
            "torch_rng": torch.get_rng_state(),
            "gen_rng": self.gen.get_state(),
        }
        with atomic_path(path) as tmp:
            torch.save(payload, tmp)

    def _load_checkpoint(self, model: nn.Module, optimizer) -> LoopState:
        payload = torch.load(self.checkpoint, map_location="cpu", weights_only=True)
        model.load_state_dict(payload["model"])
        optimizer.load_state_dict(payload["optimizer"])
        torch.set_rng_state(payload["torch_rng"])
        self.gen.set_state(payload["gen_rng"])
        return LoopState(**payload["loop"])


def unwrap(model: nn.Module) -> nn.Module:
    """The plain module inside Fabric's (and DDP's) wrappers."""
    inner = getattr(model, "module", model)
    return getattr(inner, "module", inner) if isinstance(inner, nn.parallel.DistributedDataParallel) else inner
