"""``run_bench``: every number of ``chmfl bench`` in one process, as one flat dict.

Order: matrix-multiply rates (the machine's roofline; ``best_native_matmul_gflops`` is the
fastest of the dtypes the device runs natively), CHMFL FLOPs, CHMFL inference (with
and without the segmentation decoder), CHMFL training step, then MONAI's V-Net in fp32 on the
same box. Each timing is the median of ``repeats`` runs after ``warmup`` runs.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import torch

from chmfl.bench.config import BenchConfig
from chmfl.bench.measure import load_average, matmul_gflops
from chmfl.bench.networks import (
    box_shape,
    count_flops,
    inference_timing,
    synthetic_case,
    train_step_timing,
)
from chmfl.cv.record import PeakRSS, cpu_model
from chmfl.fsutil import atomic_path
from chmfl.methods.runtime import RuntimeConfig, resolve_accelerator, resolve_precision
from chmfl.methods.train_config import TrainConfig


def _threads(cfg: BenchConfig) -> None:
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    if cfg.interop_threads:
        try:
            torch.set_num_interop_threads(cfg.interop_threads)
        except RuntimeError:  # only settable before the first parallel work of the process
            pass


def _matmul(cfg: BenchConfig) -> dict[str, Any]:
    if cfg.skip_matmul:
        return {}
    if cfg.device == "cuda":  # large enough to reach the tensor cores' rate
        fp32, n32 = matmul_gflops(torch.float32, 8192, device="cuda")
        bf16, n16 = matmul_gflops(torch.bfloat16, 8192, device="cuda")
    else:
        fp32, n32 = matmul_gflops(torch.float32, cfg.matmul_fp32_size)
        bf16, n16 = matmul_gflops(torch.bfloat16)
    return {"matmul_fp32_gflops": fp32, "matmul_fp32_size": n32,
            "matmul_bf16_gflops": bf16, "matmul_bf16_size": n16}


def _train_config(cfg: BenchConfig, precision: str, channels_last: bool,
                  fast: bool) -> tuple[TrainConfig, RuntimeConfig]:
    """The paper's science and this bench's runtime settings. Not deterministic: the timings
    measure the kernels PyTorch picks by default, as they did before the Trainer set-up
    (which sets torch's determinism process-wide) timed them."""
    runtime = RuntimeConfig(precision=precision, accelerator=cfg.device, deterministic=False).replace(
        channels_last=channels_last, fast_wgrad=fast and cfg.fast_wgrad, inplace_act=fast and cfg.inplace_act,
        inplace_abn=fast and cfg.inplace_abn, split_concat=fast and cfg.split_concat,
        fused_adam=fast and cfg.fused_adam, mmap_threshold_mb=cfg.mmap_threshold_mb if fast else 0.0,
        compile=fast and cfg.compile, compile_mode=cfg.compile_mode)
    return TrainConfig(), runtime


def _chmfl(cfg: BenchConfig, shape: tuple[int, int, int], precision: str) -> dict[str, Any]:
    opts = cfg.chmfl_options()
    data = synthetic_case(shape, cfg.seed)
    flops = count_flops("chmfl", opts, shape)
    r, w = cfg.repeats, cfg.warmup
    cl, ip = cfg.channels_last, cfg.inplace_act
    comp = cfg.compile_mode if cfg.compile else None
    dev = cfg.device
    infer = inference_timing("chmfl", opts, data, precision, r, w, True, cl, cfg.seed, comp, ip, dev)
    prob = inference_timing("chmfl", opts, data, precision, r, w, False, cl, cfg.seed, comp, ip, dev)
    tc, rc = _train_config(cfg, precision, cfg.channels_last, fast=True)
    train, peak, saved = train_step_timing("chmfl", opts, data, tc, rc, r, w, cfg.seed)
    return {
        "chmfl_forward_gflop": flops["forward"] / 1e9, "chmfl_train_gflop": flops["train"] / 1e9,
        "chmfl_infer_s": infer.median_s, "chmfl_infer_samples_s": infer.samples_s,
        "chmfl_infer_prob_only_s": prob.median_s, "chmfl_infer_prob_only_samples_s": prob.samples_s,
        "chmfl_train_step_s": train.median_s, "chmfl_train_samples_s": train.samples_s,
        "chmfl_train_step_cpu_s": train.cpu_s, "chmfl_infer_cpu_s": infer.cpu_s,
        "chmfl_train_warmup_s": train.warmup_s,
        "chmfl_train_gflops": flops["train"] / 1e9 / train.median_s,
        "chmfl_infer_gflops": flops["forward"] / 1e9 / infer.median_s,
        "chmfl_train_peak_rss_gb": peak, "chmfl_train_saved_gb": saved,
    }


def _vnet(cfg: BenchConfig, shape: tuple[int, int, int]) -> dict[str, Any]:
    if cfg.skip_vnet:
        return {}
    data = synthetic_case(shape, cfg.seed)
    flops = count_flops("vnet", {}, shape)
    r, w = cfg.repeats, cfg.warmup
    infer = inference_timing("vnet", {}, data, "32-true", r, w, seed=cfg.seed, device=cfg.device)
    tc, rc = _train_config(cfg, "32", channels_last=False, fast=False)
    train, peak, saved = train_step_timing("vnet", {}, data, tc, rc, r, w, cfg.seed)
    extra: dict[str, Any] = {}
    if cfg.device == "cuda":  # on a GPU the fair comparison is also V-Net in bf16
        tc16, rc16 = _train_config(cfg, "bf16", channels_last=False, fast=False)
        train16, peak16, _ = train_step_timing("vnet", {}, data, tc16, rc16, r, w, cfg.seed)
        extra = {"vnet_train_step_bf16_s": train16.median_s, "vnet_train_bf16_peak_gb": peak16}
    return {**extra, "vnet_train_gflop": flops["train"] / 1e9, "vnet_infer_fp32_s": infer.median_s,
            "vnet_train_step_fp32_s": train.median_s, "vnet_train_samples_s": train.samples_s,
            "vnet_train_step_cpu_s": train.cpu_s,
            "vnet_train_gflops": flops["train"] / 1e9 / train.median_s,
            "vnet_train_peak_rss_gb": peak, "vnet_train_saved_gb": saved}


def native_dtypes(device: str) -> tuple[str, ...]:
    """The matmul dtypes ``device`` runs natively: fp32 always; bf16 on a CPU with AMX or
    AVX512-BF16 (elsewhere it is emulated, ~100x slower) and on a GPU that supports it."""
    from chmfl.methods.runtime import cpu_has_fast_bf16

    bf16 = torch.cuda.is_bf16_supported() if device == "cuda" else cpu_has_fast_bf16()
    return ("fp32", "bf16") if bf16 else ("fp32",)


def _native(res: dict[str, Any], device: str) -> dict[str, Any]:
    """The machine's best native matmul rate and the step's share of it: the one ratio that
    reads the same on any machine (bf16 where native, fp32 elsewhere)."""
    rates = {d: res[f"matmul_{d}_gflops"] for d in native_dtypes(device) if f"matmul_{d}_gflops" in res}
    if not rates or "chmfl_train_gflops" not in res:
        return {}
    dtype = max(rates, key=rates.__getitem__)
    return {"best_native_matmul_gflops": rates[dtype], "best_native_matmul_dtype": dtype,
            "chmfl_train_share_of_native": res["chmfl_train_gflops"] / rates[dtype]}


def _ratios(res: dict[str, Any], precision: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if "vnet_train_step_fp32_s" in res:
        out["speedup_vs_vnet_train"] = res["vnet_train_step_fp32_s"] / res["chmfl_train_step_s"]
    if "vnet_train_step_bf16_s" in res:
        out["speedup_vs_vnet_bf16_train"] = res["vnet_train_step_bf16_s"] / res["chmfl_train_step_s"]
    for key in ("matmul_bf16_gflops", "matmul_fp32_gflops"):
        if key in res:
            out[f"chmfl_train_fraction_of_{key.split('_')[1]}"] = res["chmfl_train_gflops"] / res[key]
    return out


def run_bench(cfg: BenchConfig) -> dict[str, Any]:
    """Run every measurement of ``cfg``; returns the flat result dict (``chmfl bench --json``)."""
    cfg = cfg.resolved()  # the "auto" speed options as a fold on this device trains with them
    _threads(cfg)
    shape = box_shape(cfg.voxel_mm)
    precision = resolve_precision(cfg.precision, resolve_accelerator(cfg.device))
    res: dict[str, Any] = {
        "cpu": cpu_model(), "torch": torch.__version__, "threads": torch.get_num_threads(),
        "device": torch.cuda.get_device_name() if cfg.device == "cuda" else "cpu",
        "interop_threads": torch.get_num_interop_threads(), "precision": precision,
        "box_zyx": shape, "config": cfg.to_dict(), "chmfl_options": cfg.chmfl_options(),
        "load_avg_start": load_average(),
    }
    with PeakRSS() as mem:
        res.update(_matmul(cfg))
        res.update(_chmfl(cfg, shape, precision))
        res.update(_vnet(cfg, shape))
    res.update(_ratios(res, precision))
    res.update(_native(res, cfg.device))
    peaks = [mem.peak_gb] + [v for k, v in res.items() if k.endswith("_peak_rss_gb")]
    res.update({"peak_rss_gb": max(peaks), "load_avg_end": load_average(), "wall_s": mem.seconds})
    return res


ROWS = (  # (label, key, format) of the printed table
    ("matmul fp32 (GFLOP/s)", "matmul_fp32_gflops", "{:.1f}"),
    ("matmul bf16 (GFLOP/s)", "matmul_bf16_gflops", "{:.2f}"),
    ("CHMFL forward (GFLOP)", "chmfl_forward_gflop", "{:.1f}"),
    ("CHMFL train step (GFLOP)", "chmfl_train_gflop", "{:.1f}"),
    ("CHMFL inference, prob + mask (s)", "chmfl_infer_s", "{:.3f}"),
    ("CHMFL inference, prob only (s)", "chmfl_infer_prob_only_s", "{:.3f}"),
    ("CHMFL train step (s)", "chmfl_train_step_s", "{:.3f}"),
    ("CHMFL train step, CPU time (s)", "chmfl_train_step_cpu_s", "{:.3f}"),
    ("CHMFL train achieved (GFLOP/s)", "chmfl_train_gflops", "{:.1f}"),
    ("CHMFL train / fp32 matmul", "chmfl_train_fraction_of_fp32", "{:.1%}"),
    ("CHMFL train / bf16 matmul", "chmfl_train_fraction_of_bf16", "{:.1%}"),
    ("best native matmul (GFLOP/s)", "best_native_matmul_gflops", "{:.1f}"),
    ("CHMFL train / best native matmul", "chmfl_train_share_of_native", "{:.1%}"),
    ("CHMFL train peak RSS / GPU memory (GB)", "chmfl_train_peak_rss_gb", "{:.2f}"),
    ("CHMFL train, kept for backward (GB)", "chmfl_train_saved_gb", "{:.2f}"),
    ("V-Net fp32 inference (s)", "vnet_infer_fp32_s", "{:.3f}"),
    ("V-Net fp32 train step (s)", "vnet_train_step_fp32_s", "{:.3f}"),
    ("V-Net fp32 train step, CPU time (s)", "vnet_train_step_cpu_s", "{:.3f}"),
    ("V-Net train achieved (GFLOP/s)", "vnet_train_gflops", "{:.1f}"),
    ("V-Net train peak RSS / GPU memory (GB)", "vnet_train_peak_rss_gb", "{:.2f}"),
    ("V-Net train, kept for backward (GB)", "vnet_train_saved_gb", "{:.2f}"),
    ("V-Net step / CHMFL step", "speedup_vs_vnet_train", "{:.2f}x"),
    ("V-Net bf16 train step (s)", "vnet_train_step_bf16_s", "{:.3f}"),
    ("V-Net bf16 step / CHMFL step", "speedup_vs_vnet_bf16_train", "{:.2f}x"),
    ("peak RSS, whole run (GB)", "peak_rss_gb", "{:.2f}"),
)


def format_table(res: dict[str, Any]) -> str:
    """The result as a two-column text table, with the run's settings in its header."""
    head = (f"chmfl bench: box {'x'.join(map(str, res['box_zyx']))} voxels "
            f"({res['config']['voxel_mm']:g} mm), precision {res['precision']}, "
            f"{res['threads']} threads, {res['cpu']}, device {res.get('device', 'cpu')}, load {res['load_avg_start'][0]:.2f}"
            f" -> {res['load_avg_end'][0]:.2f}")
    opts = {k: v for k, v in res["config"].items()
            if k in ("preset", "channels_last", "fast_wgrad", "inplace_act", "inplace_abn",
                     "split_concat", "fused_adam", "mmap_threshold_mb", "compile", "compile_mode", "repeats")}
    lines = [head, "settings: " + ", ".join(f"{k}={v}" for k, v in opts.items())]
    lines += [f"{label:<36} {fmt.format(res[key]):>12}" for label, key, fmt in ROWS if key in res]
    return "\n".join(lines)


def write_json(res: dict[str, Any], path: str | Path) -> None:
    with atomic_path(Path(path)) as tmp:
        tmp.write_text(json.dumps(res, indent=2, default=_plain))


def _plain(obj: Any) -> Any:
    if dataclasses.is_dataclass(obj):
        return dataclasses.asdict(obj)
    if isinstance(obj, (tuple, set)):
        return list(obj)
    return str(obj)
