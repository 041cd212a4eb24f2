"""``chmfl bench``: how fast CHMFL trains and predicts on this machine, next to MONAI's V-Net
and the machine's matrix-multiply rates (docs/performance.md)."""

from chmfl.bench.config import PRESETS, BenchConfig
from chmfl.bench.run import format_table, run_bench, write_json

__all__ = ["PRESETS", "BenchConfig", "format_table", "run_bench", "write_json"]
