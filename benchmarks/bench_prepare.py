"""Time ``chmfl data prepare`` of the 51 STS patients (issue target: <= 60 s at 1 mm with 2
workers). Each voxel size prepares into a fresh folder, so nothing is reused from a cache.

    python benchmarks/bench_prepare.py [--source DIR] [--clinical XLSX] [--voxel-mm 1 4]
        [--workers 2] [--work /tmp/chmfl-bench-prepare] [--json benchmarks/results/prepare.json]
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import chmfl, machine, timed, write  # noqa: E402

SOURCE = "/tmp/data/sts-petct"
CLINICAL = "/work/shared/data/sts-clinical/INFOclinical_STS.xlsx"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--source", default=SOURCE)
    p.add_argument("--clinical", default=CLINICAL)
    p.add_argument("--voxel-mm", type=float, nargs="+", default=[1.0, 4.0])
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--work", default="/tmp/chmfl-bench-prepare", help="scratch folder (emptied)")
    p.add_argument("--json", default="benchmarks/results/prepare.json")
    args = p.parse_args()
    missing = [x for x in (args.source, args.clinical) if not Path(x).exists()]
    if missing:
        print(f"skipped: {', '.join(missing)} not found (see /work/shared/data/README.md)")
        return 0
    record = {"machine": machine(), "workers": args.workers, "runs": []}
    for vox in args.voxel_mm:
        out = Path(args.work) / f"cache_{vox:g}mm"
        shutil.rmtree(out, ignore_errors=True)
        run = timed(chmfl() + ["data", "prepare", args.source, "--out", str(out), "--clinical",
                               args.clinical, "--voxel-mm", f"{vox:g}", "--workers", str(args.workers),
                               "--no-progress"])
        run["voxel_mm"] = vox
        run["cache"] = str(out)
        record["runs"].append(run)
        print(f"{vox:g} mm, {args.workers} workers: {run['wall_s']:.1f} s (rc {run['rc']})")
    write(args.json, record)
    return max(r["rc"] for r in record["runs"])


if __name__ == "__main__":
    sys.exit(main())
