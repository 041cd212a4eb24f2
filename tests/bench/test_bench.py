"""``chmfl bench`` in its CI-size mode: runs, writes every required key, counts FLOPs as the
model summary does, and refuses bad settings cleanly."""

from __future__ import annotations

import json

import pytest
import torch

from chmfl.bench import BenchConfig, format_table
from chmfl.bench.measure import time_call
from chmfl.bench.networks import box_shape, count_flops, synthetic_case
from chmfl.cli.main import main
from chmfl.errors import ChmflError
from chmfl.models.summary import summarize

REQUIRED = ("chmfl_infer_s", "chmfl_train_step_s", "chmfl_train_gflops", "matmul_bf16_gflops",
            "matmul_fp32_gflops", "peak_rss_gb", "precision", "threads",
            "best_native_matmul_gflops", "chmfl_train_share_of_native")


def test_bench_cli_tiny_run_writes_required_keys(tmp_path, capsys):
    out = tmp_path / "bench.json"
    rc = main(["bench", "--voxel-mm", "4", "--repeats", "1", "--warmup", "0", "--skip-vnet",
               "--threads", "1", "--json", str(out)])
    assert rc == 0
    res = json.loads(out.read_text())
    for key in REQUIRED:
        assert key in res, key
    assert res["box_zyx"] == [36, 28, 28] and res["threads"] == 1
    assert res["precision"] in ("32-true", "bf16-mixed")
    assert 0 < res["chmfl_infer_prob_only_s"] and 0 < res["chmfl_train_step_s"]
    assert res["chmfl_train_gflops"] == pytest.approx(res["chmfl_train_gflop"] / res["chmfl_train_step_s"])
    assert res["peak_rss_gb"] >= res["chmfl_train_peak_rss_gb"] > 0
    assert 0 < res["chmfl_train_saved_gb"] < res["chmfl_train_peak_rss_gb"]
    assert "vnet_train_step_fp32_s" not in res
    # the share is achieved / best native rate: bf16 only where the CPU runs it natively
    from chmfl.methods.runtime import cpu_has_fast_bf16

    native = ["matmul_fp32_gflops", *(["matmul_bf16_gflops"] if cpu_has_fast_bf16() else [])]
    assert res["best_native_matmul_gflops"] == max(res[k] for k in native)
    assert res["best_native_matmul_dtype"] == ("bf16" if res["best_native_matmul_gflops"] ==
                                               res["matmul_bf16_gflops"] else "fp32")
    assert res["chmfl_train_share_of_native"] == pytest.approx(
        res["chmfl_train_gflops"] / res["best_native_matmul_gflops"])
    # a run records the speed options it used: with no flag, the device's defaults (all on a CPU)
    from chmfl.accel.options import device_defaults

    assert {k: res["config"][k] for k in device_defaults("cpu")} == device_defaults("cpu")
    table = capsys.readouterr().out
    assert "CHMFL train step (s)" in table and "V-Net" not in table


def test_flop_count_matches_model_summary():
    opts = {"widths": (4, 8, 16, 32, 64), "decoder_kernel": 3}
    flops = count_flops("chmfl", opts, (16, 32, 32))
    assert flops["forward"] == summarize("chmfl", (16, 32, 32), **opts).total_flops
    # backward = input + weight gradients: about twice the forward (less the first layer's input grad)
    assert 2.5 * flops["forward"] < flops["train"] < 3.01 * flops["forward"]


def test_box_and_synthetic_case():
    assert box_shape(1.0) == (144, 112, 112) and box_shape(4.0) == (36, 28, 28)
    case = synthetic_case((16, 20, 24), seed=1, batch=2)
    assert case.pet.shape == (2, 1, 16, 20, 24) and case.labels.tolist() == [1, 1]
    assert 0 < float(case.mask.mean()) < 0.2 and set(case.mask.unique().tolist()) == {0.0, 1.0}
    assert torch.equal(case.pet, synthetic_case((16, 20, 24), seed=1, batch=2).pet)


def test_time_call_counts_runs():
    calls = []
    t = time_call(lambda: calls.append(1), repeats=3, warmup=2)
    assert len(calls) == 5 and len(t.samples_s) == 3 and len(t.warmup_s) == 2
    assert t.median_s == sorted(t.samples_s)[1]


def test_bad_settings_are_refused(capsys):
    with pytest.raises(ChmflError):
        BenchConfig(preset="turbo")
    with pytest.raises(ChmflError):
        BenchConfig(repeats=0)
    assert main(["bench", "--voxel-mm", "0"]) == 2
    assert "voxel" in capsys.readouterr().err
    assert main(["bench", "--voxel-mm", "4", "--compile-mode", "fastest"]) == 2
    assert "compile mode must be one of" in capsys.readouterr().err


def test_table_lists_what_the_result_has():
    res = {"box_zyx": (36, 28, 28), "config": BenchConfig(voxel_mm=4).to_dict(), "precision": "32-true",
           "threads": 2, "cpu": "cpu", "load_avg_start": (0.5, 0, 0), "load_avg_end": (0.7, 0, 0),
           "chmfl_train_step_s": 1.25, "speedup_vs_vnet_train": 1.5}
    text = format_table(res)
    assert "1.250" in text and "1.50x" in text and "matmul" not in text and "load 0.50 -> 0.70" in text


def test_bench_device_is_checked():
    with pytest.raises(ChmflError, match="cpu or cuda"):
        BenchConfig(device="tpu")
    if not torch.cuda.is_available():
        assert main(["bench", "--device", "cuda", "--voxel-mm", "4", "--skip-vnet"]) != 0


def test_memory_options_halve_what_a_step_keeps_for_backward():
    from chmfl.bench.networks import train_step_timing
    from chmfl.methods.runtime import RuntimeConfig
    from chmfl.methods.train_config import TrainConfig

    data = synthetic_case(box_shape(4))
    from chmfl.accel.options import NO_SPEED_OPTIONS

    plain = RuntimeConfig(precision="32", accelerator="cpu").replace(**NO_SPEED_OPTIONS)
    low = plain.replace(inplace_abn=True, split_concat=True)
    _, _, saved_plain = train_step_timing("chmfl", {}, data, TrainConfig(), plain, repeats=1, warmup=0)
    _, _, saved_low = train_step_timing("chmfl", {}, data, TrainConfig(), low, repeats=1, warmup=0)
    # the conv weights are kept too (once each): at 4 mm they outweigh the maps
    from chmfl.models import build_model

    weights = sum(p.numel() * 4 for p in build_model("chmfl").parameters()) / 1e9
    maps_plain, maps_low = saved_plain - weights, saved_low - weights
    # 1 mm: 2.27 -> 1.03 GB in all with in-place ELUs (docs/performance.md); here without them
    assert 0 < maps_low < 0.5 * maps_plain, (maps_low, maps_plain)


def test_speed_options_flag_sets_every_option(monkeypatch):
    import chmfl.bench

    seen = []
    monkeypatch.setattr(chmfl.bench, "run_bench", lambda cfg: seen.append(cfg) or {})
    monkeypatch.setattr(chmfl.bench, "format_table", lambda res: "")
    assert main(["bench", "--speed-options", "--mmap-threshold-mb", "4"]) == 0
    assert main(["bench", "--no-speed-options", "--split-concat"]) == 0
    assert main(["bench"]) == 0
    fast, plain, auto = seen
    assert fast.channels_last and fast.fast_wgrad and fast.inplace_act and fast.inplace_abn
    assert fast.split_concat and fast.fused_adam and fast.mmap_threshold_mb == 4  # the threshold stays its own flag
    assert not (plain.channels_last or plain.inplace_abn or plain.fused_adam or plain.mmap_threshold_mb)
    assert plain.split_concat is True  # a named flag adds to --no-speed-options
    # no flag: each option is the device's default, decided when the bench runs
    assert auto.channels_last is None and auto.fused_adam is None
    cpu = auto.resolved()
    assert cpu.channels_last and cpu.inplace_abn and cpu.split_concat and cpu.fused_adam


def test_speed_option_defaults_follow_the_device_rule():
    from chmfl.accel.options import SPEED_OPTIONS, SpeedOptions, device_defaults

    cpu = device_defaults("cpu")  # every option measured faster on CPUs, but GEMM wgrad on AVX-512
    assert cpu == {**SPEED_OPTIONS, "fast_wgrad": torch.backends.cpu.get_cpu_capability() != "AVX512"}
    gpu = device_defaults("cuda")
    assert gpu["channels_last"] and gpu["fused_adam"] and not gpu["fast_wgrad"]
    assert not any(device_defaults("mps").values())  # unknown device type: all off
    explicit = SpeedOptions(inplace_abn=False, channels_last="auto").resolved("cpu")
    assert explicit.inplace_abn is False and explicit.channels_last is True and explicit.is_resolved
    with pytest.raises(ChmflError, match="true, false or auto"):
        SpeedOptions(channels_last="yes")


def test_the_malloc_threshold_is_auto_too():
    """mmap_threshold_mb "auto" is MMAP_AUTO_MB on a CPU and 0 elsewhere; numbers stay; the
    plain step (--no-speed-options) leaves the allocator alone; nonsense is a one-line error."""
    from chmfl.accel.options import MMAP_AUTO_MB, NO_SPEED_OPTIONS, SpeedOptions

    auto = SpeedOptions()
    assert auto.mmap_threshold_mb is None and not auto.is_resolved and auto.resolved("cuda").is_resolved
    assert auto.resolved("cpu").mmap_threshold_mb == MMAP_AUTO_MB > 0
    assert auto.resolved("cuda").mmap_threshold_mb == 0.0
    assert SpeedOptions(mmap_threshold_mb="auto").resolved("cpu").mmap_threshold_mb == MMAP_AUTO_MB
    assert SpeedOptions(mmap_threshold_mb=1).resolved("cpu").mmap_threshold_mb == 1.0
    assert SpeedOptions(**NO_SPEED_OPTIONS).resolved("cpu").mmap_threshold_mb == 0.0
    for bad in ("x", -1, True):
        with pytest.raises(ChmflError, match="mmap_threshold_mb"):
            SpeedOptions(mmap_threshold_mb=bad)


def test_set_mmap_threshold_also_fixes_the_trim_threshold(monkeypatch):
    """Both mallopt calls are made (a fixed mmap threshold alone drops glibc's trim threshold to
    128 KB: a 4 mm step was 8 % slower); where mallopt is missing, nothing is set."""
    import ctypes

    from chmfl.accel import lowmem

    calls = []

    class Libc:
        def mallopt(self, param, value):
            calls.append((param, value))
            return 1

    monkeypatch.setattr(ctypes, "CDLL", lambda name: Libc())
    assert lowmem.set_mmap_threshold(8)
    assert calls == [(lowmem.M_MMAP_THRESHOLD, 8 * 2**20), (lowmem.M_TRIM_THRESHOLD, lowmem.TRIM_THRESHOLD_MB * 2**20)]
    monkeypatch.setattr(ctypes, "CDLL", lambda name: object())  # no mallopt: not glibc
    assert not lowmem.set_mmap_threshold(8)
