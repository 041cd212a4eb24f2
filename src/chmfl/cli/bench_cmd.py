"""``chmfl bench``: CHMFL inference and training-step times, achieved GFLOP/s, peak memory,
MONAI V-Net's fp32 step on the same box, and the machine's matmul rates, in one process
(median of ``--repeats`` runs after warm-up). docs/performance.md explains every number."""

from __future__ import annotations

import argparse

from chmfl.cli.args import RawDefaultsFormatter


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("bench", help="time CHMFL training and inference on this machine (vs V-Net)",
                       description=__doc__, formatter_class=RawDefaultsFormatter)
    p.add_argument("--voxel-mm", type=float, default=1.0, help="box voxel size (1 = the paper's 144x112x112)")
    p.add_argument("--json", metavar="FILE", help="also write every number to FILE (JSON; optional)")
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu",
                   help="where to time (cuda: one GPU; peak memory is then the GPU's)")
    p.add_argument("--precision", choices=("auto", "32", "bf16"), default="auto",
                   help="CHMFL precision (auto: bf16 only where the device runs it natively)")
    p.add_argument("--threads", type=int, default=0, help="torch intra-op threads (0: torch's default)")
    p.add_argument("--interop-threads", type=int, default=0, help="torch inter-op threads (0: default)")
    p.add_argument("--repeats", type=int, default=3, help="timed runs per measurement (median)")
    p.add_argument("--warmup", type=int, default=1, help="untimed runs before them")
    p.add_argument("--preset", choices=("faithful", "fast"), default="faithful",
                   help="CHMFL network: faithful (paper, default) or fast (decoder kernel 3, 1 conv per level)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="extra CHMFL option, e.g. --set decoder_kernel=3 (repeatable; none by default)")
    p.add_argument("--channels-last", action="store_true", default=None, help="channels_last_3d memory format (default: the device's rule)")
    p.add_argument("--fast-wgrad", action="store_true", default=None, help="conv weight gradients as large GEMMs (default: the device's rule)")
    p.add_argument("--inplace-act", action="store_true", default=None, help="in-place ELUs (less memory; default: the device's rule)")
    p.add_argument("--inplace-abn", action="store_true", default=None,
                   help="BatchNorm + ELU keep one map for backward (in-place activated BatchNorm; less memory; "
                        "default: the device's rule)")
    p.add_argument("--split-concat", action="store_true", default=None,
                   help="decoder convs read (up, PET, CT) apart: no concatenated copies (less memory; default: the "
                        "device's rule)")
    p.add_argument("--fused-adam", action="store_true", default=None, help="Adam's update as one fused kernel per step (default: the device's rule)")
    p.add_argument("--mmap-threshold-mb", type=float, default=None, metavar="MB",
                   help="glibc malloc maps blocks of at least MB from the training step on (less "
                        "retained memory; 0: the allocator's default; default: the device's rule, "
                        "16 on a CPU, 0 with --no-speed-options)")
    speed = p.add_mutually_exclusive_group()
    speed.add_argument("--speed-options", action="store_true",
                       help="all of --channels-last --fast-wgrad --inplace-act --inplace-abn --split-concat "
                            "--fused-adam (what 'chmfl cv --speed-options' trains with); by default each is on "
                            "where it is faster on the device, as 'chmfl cv' trains")
    speed.add_argument("--no-speed-options", action="store_true",
                       help="those options off but the ones named by their own flag (the plain step)")
    p.add_argument("--compile", action="store_true", help="torch.compile CHMFL (inductor; slow first step)")
    p.add_argument("--compile-mode", default="default", metavar="MODE",
                   help="torch.compile's mode (implies --compile): default, reduce-overhead (CUDA "
                        "graphs on a GPU), max-autotune, max-autotune-no-cudagraphs")
    p.add_argument("--skip-vnet", action="store_true", help="do not time MONAI's V-Net")
    p.add_argument("--skip-matmul", action="store_true", help="do not measure matmul rates")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from chmfl.accel.options import SPEED_OPTIONS
    from chmfl.bench import BenchConfig, format_table, run_bench, write_json
    from chmfl.cli.args import parse_key_values

    speed = {k: getattr(args, k) for k in SPEED_OPTIONS}  # None: the device's default
    if args.speed_options or args.no_speed_options:  # explicit flags can only add
        speed = {k: bool(v) or args.speed_options for k, v in speed.items()}
    mmap = args.mmap_threshold_mb
    if mmap is None and args.no_speed_options:  # the plain step: the allocator's own threshold
        mmap = 0.0
    cfg = BenchConfig(
        voxel_mm=args.voxel_mm, device=args.device, precision=args.precision, threads=args.threads,
        interop_threads=args.interop_threads, repeats=args.repeats, warmup=args.warmup,
        **speed, mmap_threshold_mb=mmap, compile=args.compile or args.compile_mode != "default",
        compile_mode=args.compile_mode, preset=args.preset,
        model_options=parse_key_values(args.set),
        skip_vnet=args.skip_vnet, skip_matmul=args.skip_matmul,
    )
    res = run_bench(cfg)
    print(format_table(res))
    if args.json:
        write_json(res, args.json)
    return 0
