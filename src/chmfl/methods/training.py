"""The neural training loop: Eq. (1), Adam, early stopping on the total loss, a checkpoint
per epoch, exact resume, seeds. Devices and precision come from Lightning Fabric (CPU, one
GPU, or DDP over many), so this file holds only the loop itself.

Resume is exact: the checkpoint holds the model, the optimiser, the loop state and both RNG
states (torch's global one, used by dropout, and the generator that orders batches and draws
augmentations), so an interrupted fold ends with the same weights as an uninterrupted one.
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from chmfl.data.tensors import CaseTensors, augment
from chmfl.fsutil import atomic_path
from chmfl.methods.train_config import (
    CUDA_GRAPH_MODES,
    TrainConfig,
    resolve_accelerator,
    resolve_precision,
)
from chmfl.models.losses import eq1_terms

log = logging.getLogger(__name__)
CHECKPOINT = "checkpoint.pt"
LOSS_KEYS = ("loss", "cls_loss", "seg_loss")  # the epoch sums of ``train_epoch``, in this order


@dataclass
class LoopState:
    """What the loop carries from epoch to epoch (and through a checkpoint)."""

    epoch: int = 0  # epochs completed
    best_loss: float = math.inf
    bad_epochs: int = 0
    stopped: bool = False
    history: list[dict] = field(default_factory=list)


def is_main_process() -> bool:
    """False in the DDP ranks other than 0 (``devices > 1``): they train in step with rank 0
    but leave every record to it. Before the process group exists (a rank's process re-runs
    the command from its start), the launcher's LOCAL_RANK / NODE_RANK tell."""
    import os

    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank() == 0
    return all(int(os.environ.get(k, "0") or 0) == 0 for k in ("LOCAL_RANK", "NODE_RANK"))


def make_fabric(cfg: TrainConfig):
    """A Lightning Fabric for this config (device, number of devices, precision)."""
    from lightning.fabric import Fabric

    accelerator = resolve_accelerator(cfg.accelerator)
    precision = resolve_precision(cfg.precision, accelerator)
    strategy = "ddp" if (isinstance(cfg.devices, int) and cfg.devices > 1) else "auto"
    fabric = Fabric(accelerator=accelerator, devices=cfg.devices, precision=precision, strategy=strategy)
    if strategy == "ddp":
        fabric.launch()
    return fabric


def _epoch_batches(n: int, batch_size: int, gen: torch.Generator, rank: int, world: int) -> list[torch.Tensor]:
    """This rank's batches of one epoch. Under DDP every rank needs the same number of steps
    (each step all-reduces the gradients): the shuffled order is padded by wrapping around to
    a multiple of ``world`` (as torch's DistributedSampler does) before it is dealt out."""
    order = torch.randperm(n, generator=gen)
    if world > 1 and n % world:
        order = torch.cat([order, order[: world - n % world]])
    order = order[rank::world]
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]


def _forward(model: nn.Module, b: CaseTensors, device: torch.device, memory_format):
    to = lambda t: None if t is None else t.to(device, memory_format=memory_format)  # noqa: E731
    feats = None if b.features is None else b.features.to(device)
    return model(to(b.pet), to(b.ct), mask=to(b.mask), features=feats)


def _auc(labels: list[int], probs: list[float]) -> float:
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(labels, probs)) if len(set(labels)) == 2 else float("nan")


def train_step(model, optimizer, fabric, b: CaseTensors, cfg: TrainConfig, memory_format):
    """One optimiser step on batch ``b``: forward, Eq. (1), backward, Adam; returns the loss,
    its parts ``{"cls_loss", "seg_loss"}`` and the network output, all still on the training
    device: nothing here waits for the device (``chmfl bench`` times exactly this)."""
    if _uses_cuda_graphs(cfg):
        torch.compiler.cudagraph_mark_step_begin()  # a new step: the last one's outputs may go
    out = _forward(model, b, fabric.device, memory_format)
    y = b.labels.to(fabric.device)
    mask = None if b.mask is None else b.mask.to(fabric.device)
    loss, cls, seg = eq1_terms(out, y, mask, cfg.seg_weight, cfg.seg_reduction)
    optimizer.zero_grad(set_to_none=True)
    fabric.backward(loss)
    optimizer.step()
    return loss, {"cls_loss": cls.detach(), "seg_loss": seg.detach()}, out


def train_epoch(model, optimizer, fabric, data: CaseTensors, cfg: TrainConfig, gen, memory_format) -> dict:
    """One pass over the training cases; returns the epoch's mean losses and training AUC.

    The loss sums and training probabilities stay on the device until the epoch ends (one
    host copy per epoch, not three per step: each copy would make the host wait for the GPU
    before it may queue the next step). The sums are float64, as Python's floats were, so the
    numbers are the same as summing per step on the host."""
    model.train()
    acc = torch.zeros(len(LOSS_KEYS), dtype=torch.float64, device=fabric.device)
    host_labels = data.labels.cpu()  # the cases may be on the GPU (``data_on_device``)
    labels, probs, n = [], [], 0
    for idx in _epoch_batches(len(data), cfg.batch_size, gen, fabric.global_rank, fabric.world_size):
        b = data.batch(idx)
        if cfg.augment:
            b = augment(b, gen)
        loss, parts, out = train_step(model, optimizer, fabric, b, cfg, memory_format)
        k = len(idx)
        n += k
        acc += torch.stack([loss.detach(), parts["cls_loss"], parts["seg_loss"]]).double() * k
        labels += host_labels[idx].tolist()
        probs.append(torch.softmax(out.logits.detach().float(), 1)[:, 1])
    probs = torch.cat(probs) if probs else acc.new_zeros(0)
    if fabric.world_size > 1:  # every rank decides early stopping on the same, whole-epoch numbers
        acc, n, labels, probs = _gather_epoch(fabric, acc, n, labels, probs)
    stats = {key: v / max(n, 1) for key, v in zip(LOSS_KEYS, acc.tolist())}
    stats["train_auc"] = _auc(labels, probs.tolist())
    return stats


def _gather_epoch(fabric, acc: torch.Tensor, n: int, labels: list, probs: torch.Tensor):
    """Loss sums, case counts, labels and probabilities of all ranks (DDP; on the training
    device, as NCCL needs)."""
    totals = fabric.all_reduce(torch.cat([acc, acc.new_tensor([n])]), reduce_op="sum")
    mine = torch.stack([acc.new_tensor(labels), probs.double()])
    gathered = fabric.all_gather(mine).cpu()  # (world, 2, steps)
    flat = gathered.reshape(-1, 2, gathered.shape[-1]).transpose(0, 1).reshape(2, -1)
    return totals[:-1], int(totals[-1]), [int(v) for v in flat[0].tolist()], flat[1]


def _update_stopping(state: LoopState, loss: float, cfg: TrainConfig) -> None:
    """Early stopping: 'training was terminated when no further changes in the total loss'."""
    if loss < state.best_loss * (1.0 - cfg.min_delta):
        state.best_loss, state.bad_epochs = loss, 0
    else:
        state.bad_epochs += 1
        state.best_loss = min(state.best_loss, loss)
    if state.epoch >= cfg.min_epochs and state.bad_epochs >= cfg.patience:
        state.stopped = True


def save_checkpoint(path: Path, model, optimizer, state: LoopState, gen: torch.Generator) -> None:
    payload = {
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "loop": {"epoch": state.epoch, "best_loss": state.best_loss, "bad_epochs": state.bad_epochs,
                 "stopped": state.stopped, "history": state.history},
        "torch_rng": torch.get_rng_state(),
        "gen_rng": gen.get_state(),
    }
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)


def load_checkpoint(path: Path, model, optimizer, gen: torch.Generator) -> LoopState:
    payload = torch.load(path, map_location="cpu", weights_only=True)
    model.load_state_dict(payload["model"])
    optimizer.load_state_dict(payload["optimizer"])
    torch.set_rng_state(payload["torch_rng"])
    gen.set_state(payload["gen_rng"])
    return LoopState(**payload["loop"])


def fit_network(model: nn.Module, data: CaseTensors, cfg: TrainConfig, seed: int,
                workdir: Path | None = None, progress: bool = True) -> tuple[nn.Module, list[dict]]:
    """Train ``model`` on ``data`` with ``cfg``; resume from ``workdir/checkpoint.pt`` if there.

    Returns the trained module (on the CPU, eval mode) and the per-epoch history.
    """
    from tqdm.auto import tqdm

    if cfg.num_threads:
        torch.set_num_threads(cfg.num_threads)
    # process-wide in torch: set either way, so a non-deterministic run after a deterministic
    # one (several methods in one process) really is allowed the faster kernels
    torch.use_deterministic_algorithms(cfg.deterministic, warn_only=True)
    fabric = make_fabric(cfg)
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed + 1)
    memory_format = torch.channels_last_3d if cfg.channels_last else torch.contiguous_format
    model = apply_speed_options(to_memory_format(model, memory_format), cfg)
    optimizer = make_optimizer(model, cfg)
    ckpt = Path(workdir) / CHECKPOINT if workdir else None
    state = LoopState()
    if ckpt is not None and ckpt.is_file():
        state = load_checkpoint(ckpt, model, optimizer, gen)
        log.info("resuming from %s after epoch %d", ckpt, state.epoch)
    model, optimizer = fabric.setup(model, optimizer)
    if cfg.data_on_device:
        data = data.to(fabric.device)
    bar = tqdm(total=cfg.epochs, initial=state.epoch, desc="epochs", leave=False,
               disable=not progress or fabric.global_rank != 0)
    while state.epoch < cfg.epochs and not state.stopped:
        t0 = time.perf_counter()
        stats = train_epoch(model, optimizer, fabric, data, cfg, gen, memory_format)
        state.epoch += 1
        _update_stopping(state, stats["loss"], cfg)
        state.history.append({"epoch": state.epoch, **stats, "lr": cfg.lr,
                              "seconds": time.perf_counter() - t0})
        if ckpt is not None and fabric.global_rank == 0:
            save_checkpoint(ckpt, fabric_unwrap(model), optimizer, state, gen)
        bar.update(1)
        bar.set_postfix(loss=f"{stats['loss']:.4f}", auc=f"{stats['train_auc']:.2f}")
    bar.close()
    net = remove_speed_options(fabric_unwrap(model)).to("cpu", memory_format=torch.contiguous_format).eval()
    return net, state.history


def make_optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.Adam:
    """The paper's Adam for ``model``; ``cfg.fused_adam``: PyTorch's fused implementation (one
    kernel per step instead of a loop over the parameters: CHMFL's update 66 -> 14 ms on a
    2-core CPU, and on a GPU one launch instead of dozens; same update up to float rounding)."""
    return torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay,
                            fused=True if cfg.fused_adam else None)


def to_memory_format(model: nn.Module, memory_format: torch.memory_format) -> nn.Module:
    """``model`` in ``memory_format``; channels_last_3d applies to 5-D (3D-conv) weights only,
    so networks with 2D convolutions (or none) keep theirs. In place; returns ``model``."""
    if memory_format != torch.channels_last_3d:
        return model.to(memory_format=memory_format)
    for m in model.modules():
        for p in m.parameters(recurse=False):
            if p.dim() == 5:
                p.data = p.data.contiguous(memory_format=memory_format)
    return model


def apply_speed_options(model: nn.Module, cfg: TrainConfig) -> nn.Module:
    """The speed and memory options of ``cfg`` that keep the network's arithmetic
    (docs/performance.md): GEMM weight gradients, in-place ELUs, in-place activated BatchNorm,
    split decoder concatenations, torch.compile. In place; returns ``model``."""
    from chmfl.models.fastconv import set_inplace_activations, use_gemm_wgrad
    from chmfl.models.lowmem import set_mmap_threshold, set_split_concat, use_inplace_abn

    if cfg.mmap_threshold_mb > 0:
        set_mmap_threshold(cfg.mmap_threshold_mb)
    if cfg.fast_wgrad:
        use_gemm_wgrad(model)
    if cfg.inplace_act:
        set_inplace_activations(model)
    if cfg.inplace_abn:
        use_inplace_abn(model)
    if cfg.split_concat:
        set_split_concat(model)
    if cfg.compile:
        import torch._inductor.config as inductor_config

        # dropout from torch's own generator, as in eager mode: the same masks for the same
        # seed (and an exact resume); inductor's own RNG would train another trajectory
        # (measured: a cnn3d's first-epoch loss 0.54 instead of eager's 1.47). Process-wide.
        inductor_config.fallback_random = True
        # compiles __call__ in place: state_dict keys stay the same
        model.compile(mode=None if cfg.compile_mode == "default" else cfg.compile_mode)
    return model


def _uses_cuda_graphs(cfg: TrainConfig) -> bool:
    """True where the compiled network replays CUDA graphs (torch.compile's "reduce-overhead"
    and "max-autotune" modes; on a CPU the same modes compile without graphs, and marking a
    step there costs nothing)."""
    return cfg.compile and cfg.compile_mode in CUDA_GRAPH_MODES


def remove_speed_options(model: nn.Module) -> nn.Module:
    """Undo the training-only speed and memory options (plain convolutions, BatchNorms and
    ELUs, concatenated skips, no compiled call): the trained network predicts as one trained
    without them. In-place ELUs left on cost memory there: with BatchNorm on per-sample
    statistics (``bn_eval="sample"``) they raised a 40-patient prediction's peak RSS from
    0.36 to 1.09 GB at 4 mm (allocator fragmentation; same outputs)."""
    from chmfl.models.fastconv import set_inplace_activations, use_gemm_wgrad
    from chmfl.models.lowmem import set_split_concat, use_inplace_abn

    set_inplace_activations(model, enable=False)
    use_gemm_wgrad(model, enable=False)
    use_inplace_abn(model, enable=False)
    set_split_concat(model, enable=False)
    if getattr(model, "_compiled_call_impl", None) is not None:
        model._compiled_call_impl = None
    return model


def fabric_unwrap(model: nn.Module) -> nn.Module:
    """The plain module inside Fabric's (and DDP's) wrappers."""
    inner = getattr(model, "module", model)
    return getattr(inner, "module", inner) if isinstance(inner, nn.parallel.DistributedDataParallel) else inner


@contextlib.contextmanager
def bn_sample_statistics(model: nn.Module):
    """BatchNorm normalises with each sample's own statistics (as in training at batch size 1)
    instead of the running averages; running averages are left untouched (momentum 0);
    dropout and everything else stay in eval mode.

    A map with a single value per channel (a 1-voxel deepest level of a small input) has no
    sample statistics: that BatchNorm falls back to its running averages for the call.
    """
    bns = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    saved = [(m.momentum, None if m.num_batches_tracked is None else m.num_batches_tracked.clone())
             for m in bns]

    def _one_value_falls_back(module, args):
        x = args[0]
        module.training = x.numel() // max(x.shape[1], 1) > 1

    hooks = [m.register_forward_pre_hook(_one_value_falls_back) for m in bns]
    try:
        for m in bns:
            m.train()
            m.momentum = 0.0
        yield
    finally:
        for h in hooks:
            h.remove()
        for m, (mom, tracked) in zip(bns, saved):
            m.momentum = mom
            if tracked is not None:
                m.num_batches_tracked.copy_(tracked)
            m.eval()


@contextlib.contextmanager
def _inplace(model: nn.Module, enable: bool):
    """ELUs in place for the call, their flags restored afterwards."""
    elus = [m for m in model.modules() if isinstance(m, nn.ELU)] if enable else []
    saved = [m.inplace for m in elus]
    try:
        for m in elus:
            m.inplace = True
        yield
    finally:
        for m, flag in zip(elus, saved):
            m.inplace = flag


@contextlib.contextmanager
def _decoder_skipped(model: nn.Module, skip: bool):
    """Without the CFL decoder for the call (networks that declare ``decoder_optional``): the
    DM logits do not depend on it, and it holds ~98% of CHMFL's inference FLOPs."""
    decoder = getattr(model, "decoder", None)
    if not (skip and decoder is not None and getattr(model, "decoder_optional", False)):
        yield
        return
    model.decoder = None
    try:
        yield
    finally:
        model.decoder = decoder


def predict_network(model: nn.Module, data: CaseTensors, precision: str = "32-true",
                    batch_size: int = 4, bn_eval: str = "running", segment: bool = True,
                    channels_last: bool = False, inplace_act: bool = False,
                    device: str | torch.device | None = None) -> dict[str, np.ndarray]:
    """Eval-mode outputs for every case: DM probability, and masks / features when the model has them.

    ``bn_eval``: "running" (PyTorch's eval mode: BatchNorm uses running averages) or
    "sample" (each case normalised with its own statistics, one case at a time; see
    ``bn_sample_statistics`` and docs/training.md). ``segment=False``: skip the CFL decoder
    where the network allows it (same probabilities, no mask). ``channels_last``: run in the
    channels_last_3d memory format (same outputs up to float rounding). ``inplace_act``: ELUs
    overwrite their input for the call (same outputs, less memory traffic; only for networks
    whose ELU inputs are used by nothing else, as in CHMFL -- inference mode cannot check it).
    ``device``: run on this device (the model is moved there for the call and back after);
    default: where the model is. Outputs are numpy arrays on the host either way.
    """
    home = next(model.parameters()).device
    if device is not None and torch.device(device) != home:
        try:
            return predict_network(model.to(device), data, precision, batch_size, bn_eval, segment,
                                   channels_last, inplace_act)
        finally:
            model.to(home)
    model.eval()
    if bn_eval not in ("running", "sample"):
        raise ValueError(f"bn_eval must be 'running' or 'sample', not {bn_eval!r}")
    # channels_last: only the inputs change layout; every conv then runs (and outputs) channels-last
    fmt = torch.channels_last_3d if channels_last else torch.contiguous_format
    with torch.inference_mode(), _decoder_skipped(model, not segment), _inplace(model, inplace_act):
        if bn_eval == "sample":
            with bn_sample_statistics(model):
                return _predict_batches(model, data, precision, 1, fmt)
        return _predict_batches(model, data, precision, batch_size, fmt)


def _predict_batches(model: nn.Module, data: CaseTensors, precision: str, batch_size: int,
                     memory_format=torch.contiguous_format) -> dict[str, np.ndarray]:
    probs, masks, feats = [], [], []
    device = next(model.parameters()).device
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16-mixed")
    for start in range(0, len(data), batch_size):
        b = data.batch(torch.arange(start, min(start + batch_size, len(data))))
        with autocast:
            out = _forward(model, b, device, memory_format)
        probs.append(torch.softmax(out.logits.float(), 1)[:, 1].cpu())
        if out.seg_logits is not None:
            seg = out.seg_logits.argmax(1).to(torch.uint8).cpu()  # (B, D', H, W)
            if out.seg_slices is not None:  # 2D models: place their slices into the full box
                full = torch.zeros((seg.shape[0], *b.pet.shape[2:]), dtype=torch.uint8)
                full[:, out.seg_slices[0] : out.seg_slices[1]] = seg
                seg = full
            masks.append(seg)
        if out.features is not None:
            feats.append(out.features.float().flatten(1).cpu())
    result = {"probability": torch.cat(probs).numpy()}
    if masks:
        result["mask"] = torch.cat(masks).numpy()
    if feats:
        result["features"] = torch.cat(feats).numpy()
    return result


def saliency_maps(model: nn.Module, data: CaseTensors, bn_eval: str = "running") -> np.ndarray:
    """Input-gradient saliency of the DM probability, one map per case (N, D, H, W) in [0, 1].

    |d p(DM) / d input| summed over the PET and CT inputs, smoothed (Gaussian, 1 voxel) and
    scaled to [0, 1] per case: which voxels move the prediction (Fig. 6's feature-map view).
    Works for every network, 2D ones included (zero outside their slices).
    """
    from scipy.ndimage import gaussian_filter

    model.eval()
    maps = []
    ctx = bn_sample_statistics(model) if bn_eval == "sample" else contextlib.nullcontext()
    with ctx:
        for i in range(len(data)):
            b = data.batch(torch.tensor([i]))
            pet = b.pet.clone().requires_grad_(True)
            ct = b.ct.clone().requires_grad_(True)
            out = model(pet, ct, mask=b.mask, features=b.features)
            torch.softmax(out.logits.float(), 1)[0, 1].backward()
            g = (pet.grad.abs() + ct.grad.abs())[0, 0].numpy()
            g = gaussian_filter(g, 1.0)
            maps.append((g / g.max()) if g.max() > 0 else g)
    model.zero_grad(set_to_none=True)
    return np.stack(maps).astype(np.float32)
