"""``chmfl`` command line: thin subcommands that call one library function each.

Every subcommand lives in its own module of this package with ``register(subparsers)``;
the module imports heavy libraries inside its handler so ``chmfl --help`` stays fast.
Errors: a ``ChmflError`` (bad input) prints one line and exits 2; any other exception prints
one line and exits 1; set ``CHMFL_DEBUG=1`` for the traceback.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys

from chmfl import __version__
from chmfl.cli.args import Parser
from chmfl.errors import ChmflError
from chmfl.methods.threads import passive_wait

# Subcommand modules, in the order ``chmfl --help`` lists them.
_COMMANDS = (
    "demo", "convert", "data", "features_cmd", "methods_cmd", "model_summary", "cv_cmd", "report_cmd",
    "predict_cmd", "bench_cmd",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="chmfl",
        description="Distant-metastasis prediction for soft-tissue sarcoma from PET-CT (CHMFL and the methods it is compared with).",
    )
    parser.add_argument("--version", action="version", version=f"chmfl {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug-level logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    for name in _COMMANDS:
        importlib.import_module(f"chmfl.cli.{name}").register(sub)
    return parser


def quiet_libraries() -> None:
    """One log line per fact: libraries' chatter below WARNING is dropped (numexpr's thread
    count, highdicom's nine INFO lines per DICOM SEG, Lightning's precision notice per fold)."""
    # Lightning sets its own loggers to INFO when it is imported (after this runs) and prints
    # through a handler of its own besides the root's: its notices are silenced where they are
    # logged, in the rank_zero modules, whose level it leaves alone.
    for noisy in ("pykwalify", "lightning.fabric.utilities.rank_zero", "lightning_fabric.utilities.rank_zero",
                  "lightning.pytorch.utilities.rank_zero", "numexpr", "highdicom"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    logging.getLogger("radiomics").setLevel(logging.ERROR)  # it warns per extraction; chmfl reports failures itself


def main(argv: list[str] | None = None) -> int:
    passive_wait()  # before torch is imported: idle threads sleep (chmfl.methods.threads)
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )
    quiet_libraries()
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        rc = args.func(args)
    except ChmflError as exc:
        if os.environ.get("CHMFL_DEBUG"):
            raise
        print(f"chmfl: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("chmfl: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # one line, no traceback, for anything unexpected
        if os.environ.get("CHMFL_DEBUG"):
            raise
        msg = str(exc).splitlines()[0] if str(exc) else ""
        print(f"chmfl: error: {type(exc).__name__}: {msg} (CHMFL_DEBUG=1 shows the traceback)", file=sys.stderr)
        return 1
    return int(rc or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
