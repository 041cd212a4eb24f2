"""``chmfl model-summary NAME --input X Y Z``: each block's output size, parameters and FLOPs.

NAME is a network (``chmfl.models.MODELS``) or a method of the registry that trains one
(e.g. ``cnn3d-petct`` -> cnn3d with modality=petct, ``chmfl-gn8`` -> chmfl with norm=group8).
Nothing is allocated: the network runs on the meta device.
"""

from __future__ import annotations

import argparse
from typing import Any

from chmfl.cli.args import RawDefaultsFormatter

# Registry methods whose network is not named in their kwargs: the CNN half of a hybrid.
_METHOD_NETWORKS = {"mor-3dcnn": "mor-cnn"}


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("model-summary", help="block output sizes, parameters and FLOPs of a network",
                       description=__doc__, formatter_class=RawDefaultsFormatter)
    p.add_argument("name", help="network or method name (chmfl methods lists the methods)")
    p.add_argument("--input", nargs=3, type=int, metavar=("X", "Y", "Z"), required=True,
                   help="box size in voxels; the input tensor is (batch, 1, X, Y, Z) in this order "
                        "(2D networks take their slices along X)")
    p.add_argument("--batch", type=int, default=1, help="batch size (default 1)")
    p.add_argument("--depth", type=int, default=2, help="module nesting depth to list (default 2)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="network option, e.g. --set norm=group8 --set encoder_residual=true (repeatable; none by default)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=run)


def resolve_network(name: str) -> tuple[str, dict[str, Any]]:
    """(network, options) for a network or method name."""
    from chmfl.errors import ChmflError
    from chmfl.methods.registry import METHODS
    from chmfl.models import MODELS

    if name in MODELS:
        return name, {}
    info = METHODS.get(name)
    if info is not None and "model" in info.kwargs:
        return info.kwargs["model"], dict(info.kwargs.get("model_kwargs", {}))
    if name in _METHOD_NETWORKS:
        return _METHOD_NETWORKS[name], {}
    raise ChmflError(f"{name!r} is neither a network ({', '.join(MODELS)}) nor a method that trains one")


def run(args: argparse.Namespace) -> int:
    import dataclasses
    import json

    from chmfl.cli.args import parse_key_values
    from chmfl.models.summary import format_summary, summarize

    network, options = resolve_network(args.name)
    options.update(parse_key_values(args.set))
    summary = summarize(network, args.input, batch=args.batch, depth=args.depth, **options)
    print(json.dumps(dataclasses.asdict(summary), indent=2) if args.json else format_summary(summary))
    return 0
