"""``chmfl cv``, ``chmfl reproduce`` and ``chmfl train``: run methods on a prepared cohort."""

from __future__ import annotations

import argparse

from chmfl.cli.args import parse_key_values, positive_int, show_progress
from chmfl.errors import ChmflError


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", required=True, help="cache folder written by 'chmfl data prepare'")
    p.add_argument("--out", required=True, help="results folder (new, empty, or an earlier run's to continue it)")
    p.add_argument("--epochs", type=positive_int,
                   help="maximum epochs for neural methods (default: the experiment's or preset's)")
    p.add_argument("--seed", type=int, default=1,
                   help="seed of the splits (repeat r: seed + r) and of every fit (0 is the development "
                        "split the demo's settings were chosen on)")
    p.add_argument("--preset", default="paper", metavar="paper|sample-bn-aug",
                   help="training settings: the paper's (faithful) or sample-bn-aug (per-patient "
                        "BatchNorm statistics at prediction + augmentation; exploratory, docs/training.md; "
                        "formerly 'robust')")
    p.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                   help="override a training setting for every method, science (e.g. batch_size=4, "
                        "lr=0.001) or runtime (e.g. precision=32, num_threads=1) (repeatable; none by default)")
    p.add_argument("--threads", metavar="N|auto",
                   help="CPU threads for training: a number, or 'auto' (one per core other processes leave "
                        "free); default: torch's (one per core). The count changes how sums are rounded")
    speed = p.add_mutually_exclusive_group()
    speed.add_argument("--speed-options", action="store_true",
                       help="every speed/memory option that keeps the networks' arithmetic (channels_last, "
                            "fast_wgrad, inplace_act, inplace_abn, split_concat, fused_adam) on, whatever the "
                            "device; by default each is on where it is faster on the device (docs/performance.md); "
                            "--set overrides any of them, and mmap_threshold_mb (glibc's malloc threshold: 8 MB on a CPU by default, 0 leaves glibc's own)")
    speed.add_argument("--no-speed-options", action="store_true",
                       help="all of those options off (the plain step); --set KEY=true adds one back")
    p.add_argument("--no-progress", action="store_true",
                   help="no progress bars (none either when stderr is not a terminal)")


def _horizon(p: argparse.ArgumentParser) -> None:
    p.add_argument("--horizon-days", type=float, metavar="N",
                   help="label = DM within N days of the PET scan (e.g. 730); patients censored before "
                        "N days are left out and counted (binary endpoint only; default: the sheet's DM label, no horizon)")


def _test_box(p: argparse.ArgumentParser) -> None:
    p.add_argument("--test-box", default="contour", metavar="contour|hotspot|contour,hotspot",
                   help="where test patients' boxes are placed: 'contour' (centred on the expert contour, "
                        "the paper's placement, default) or 'hotspot' (as 'chmfl predict' places them, "
                        "without a contour; methods that need the test contour are left out); "
                        "'contour,hotspot' runs both on the same splits")


def _parallel(p: argparse.ArgumentParser) -> None:
    p.add_argument("--parallel-folds", type=positive_int, default=1, metavar="N",
                   help="run N fold jobs at once in separate processes, each with 1/N of the CPU "
                        "threads (or sharing one GPU)")
    p.add_argument("--executor", choices=("local", "ray"), default="local",
                   help="where fold jobs run: this machine (default) or a Ray cluster (each fold a task "
                        "with --set num_threads CPUs, re-run if its worker dies; pip install 'chmfl[cluster]')")
    p.add_argument("--address", help="the Ray cluster (e.g. auto, ray://HOST:10001; default: RAY_ADDRESS "
                                     "or a local cluster for this run); results and cache on a shared disk")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("cv", help="cross-validate any set of methods on shared splits")
    _common(p)
    p.add_argument("--methods", required=True,
                   help='comma-separated method names (chmfl methods), each optionally with a variant: '
                        'NAME[key=value,...] where a key is a training setting, a network option or '
                        'size (e.g. "chmfl[size=demo],hc-rf" or "chmfl[seg_weight=0.3]")')
    p.add_argument("--folds", type=int, default=6, help="cross-validation folds per repeat (2 up to the smaller class)")
    p.add_argument("--repeats", type=positive_int, default=5,
                   help="cross-validation repeats, each with its own split")
    p.add_argument("--reference", help="method the t-tests compare against (default: chmfl if listed, else the last method)")
    _horizon(p)
    p.add_argument("--endpoint", choices=("dm", "dm-free-survival"), default="dm",
                   help="dm: the binary DM label (default); dm-free-survival: time from the PET scan "
                        "to distant metastasis (C-index, time-dependent AUC, Kaplan-Meier)")
    _test_box(p)
    _parallel(p)
    p.set_defaults(func=run_cv)

    p = sub.add_parser("reproduce", help="run one of the paper's experiments (table1 ... fig5)")
    p.add_argument("experiment", help="table1, table2, tableS2, tableS3, tableS4, fig5 or a YAML file")
    _common(p)
    p.add_argument("--repeats", type=positive_int, help="cross-validation repeats (default: the experiment's)")
    p.add_argument("--pretrained", action="append", default=[], metavar="KEY=FILE",
                   help="weights for pretrained rows (Table SII), e.g. resnet18=resnet18.safetensors (optional; rows "
                        "without weights are skipped)")
    _horizon(p)
    _test_box(p)
    _parallel(p)
    p.set_defaults(func=run_reproduce)

    p = sub.add_parser("train", help="fit one method on all included patients and save it for 'chmfl predict'")
    _common(p)
    p.add_argument("--method", required=True, help='a method name, optionally NAME[key=value,...] as for cv --methods')
    p.add_argument("--pretrained", metavar="FILE", help="weights file (ResNet baselines; optional)")
    p.add_argument("--model-set", dest="model_sets", action="append", default=[], metavar="KEY=VALUE",
                   help="override a network option, e.g. --model-set decoder_kernel=3 (repeatable; none by default)")
    p.set_defaults(func=run_train)


def _options(args: argparse.Namespace, **extra):
    from chmfl.accel.options import NO_SPEED_OPTIONS, SPEED_OPTIONS
    from chmfl.cv.runner import RunOptions
    from chmfl.methods.spec import split_overrides
    from chmfl.methods.threads import resolve_threads

    # "auto" is resolved once here, so every fold of the run uses (and records) the same count
    threads = {"num_threads": resolve_threads(args.threads)} if args.threads is not None else {}
    speed = SPEED_OPTIONS if args.speed_options else NO_SPEED_OPTIONS if args.no_speed_options else {}
    # typed here: an unknown key or a value of the wrong type stops the command at once
    train, runtime = split_overrides({**speed, **threads, **parse_key_values(args.sets)})
    return RunOptions(seed=args.seed, epochs=args.epochs, preset=args.preset,
                      train=train, runtime=runtime, progress=show_progress(args.no_progress),
                      parallel_folds=getattr(args, "parallel_folds", 1),
                      horizon_days=getattr(args, "horizon_days", None),
                      test_box=getattr(args, "test_box", "contour"),
                      executor=getattr(args, "executor", "local"), address=getattr(args, "address", None),
                      **extra)


def run_cv(args: argparse.Namespace) -> int:
    from chmfl.cv.experiment import custom_experiment, parse_methods
    from chmfl.cv.runner import run_experiment

    exp = custom_experiment(parse_methods(args.methods), args.folds, args.repeats, args.reference, args.endpoint)
    out = run_experiment(exp, args.data, args.out, _options(args))
    print(f"results: {out}  (chmfl report {out})")
    return 0


def run_reproduce(args: argparse.Namespace) -> int:
    from chmfl.cv.experiment import load_experiment
    from chmfl.cv.runner import run_experiment

    pretrained = {}
    for item in args.pretrained:
        key, sep, path = item.partition("=")
        if not sep:
            raise ChmflError(f"--pretrained takes KEY=FILE, got {item!r}")
        pretrained[key] = path
    exp = load_experiment(args.experiment)
    out = run_experiment(exp, args.data, args.out,
                         _options(args, repeats=args.repeats, pretrained=pretrained))
    print(f"results: {out}  (chmfl report {out})")
    return 0


def run_train(args: argparse.Namespace) -> int:
    from chmfl.cv.train import train_final

    path = train_final(args.method, args.data, args.out, _options(args), pretrained=args.pretrained,
                       model_kwargs=parse_key_values(args.model_sets, "--model-set"))
    print(f"model: {path}")
    return 0
