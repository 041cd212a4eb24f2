"""DDP through Lightning Fabric, run for real on the CPU (2 processes, gloo): every rank takes
the same number of steps (an odd case count is padded), sees the whole epoch's loss and AUC
(so early stopping decides alike on every rank), and ends with the same weights."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

SCRIPT = textwrap.dedent('''
    import json, sys
    import torch
    import torch.distributed as dist
    from chmfl.data.tensors import CaseTensors
    from chmfl.methods.runtime import RuntimeConfig
    from chmfl.methods.train_config import TrainConfig
    from chmfl.methods.trainer import Trainer
    from chmfl.models import build_model

    out = sys.argv[1]
    torch.manual_seed(0)
    n = 5  # odd: the second rank's last batch is padded from the start of the order
    gen = torch.Generator().manual_seed(1)
    mask = (torch.rand(n, 1, 16, 16, 32, generator=gen) > 0.8).float()
    data = CaseTensors(pet=torch.randn(n, 1, 16, 16, 32, generator=gen) + 2 * mask,
                       ct=torch.randn(n, 1, 16, 16, 32, generator=gen), mask=mask,
                       labels=torch.tensor([0, 1, 0, 1, 1]))
    model = build_model("chmfl", widths=(4, 8, 16, 32, 64), decoder_convs=(1, 1, 1, 1),
                        decoder_kernel=3)
    cfg = TrainConfig(epochs=3, patience=1, min_delta=0.9, batch_size=1)
    runtime = RuntimeConfig(precision="32", accelerator="cpu", devices=2, num_threads=1)
    net, history = Trainer(model, cfg, runtime, seed=3, progress=False).fit(data)
    rank = dist.get_rank()
    weights = [float(p.double().sum()) for p in net.parameters()]
    with open(f"{out}/rank{rank}.json", "w") as f:
        json.dump({"world": dist.get_world_size(), "history": history, "weights": weights}, f)
''')


def test_ddp_two_cpu_processes_train_in_step(tmp_path):
    script = tmp_path / "ddp_fit.py"
    script.write_text(SCRIPT)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LOCAL_RANK", "WORLD_SIZE", "MASTER_"))}
    env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
    run = subprocess.run([sys.executable, str(script), str(tmp_path)], env=env, cwd=tmp_path,
                         capture_output=True, text=True, timeout=280)
    assert run.returncode == 0, run.stderr[-3000:]
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert ranks[0]["world"] == ranks[1]["world"] == 2
    h0, h1 = ranks[0]["history"], ranks[1]["history"]
    # patience 1 with min_delta 0.9: stops after epoch 2 -- on both ranks, from the same numbers
    assert len(h0) == len(h1) == 2
    for a, b in zip(h0, h1):
        assert a["loss"] == b["loss"] and a["train_auc"] == b["train_auc"]
    assert ranks[0]["weights"] == pytest.approx(ranks[1]["weights"], rel=1e-6)  # gradients all-reduced


@pytest.mark.slow
def test_cv_with_two_ddp_ranks_writes_one_complete_record(tmp_path):
    """``chmfl cv --set devices=2``: the launcher re-runs the command in a second process; both
    train every fold together, rank 0 alone writes, and the record is complete."""
    import pandas as pd
    from tests.synthetic import write_cache

    cache = write_cache(tmp_path / "cache", n=8, shape=(16, 16, 32))
    exe = Path(sys.executable).with_name("chmfl")
    if not exe.is_file():
        pytest.skip(f"the chmfl console script is not installed beside {sys.executable}")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LOCAL_RANK", "WORLD_SIZE", "MASTER_"))}
    run = subprocess.run([str(exe), "cv", "--data", str(cache), "--out", "res", "--methods",
                          "chmfl,suvmax-volume", "--folds", "2", "--repeats", "1", "--epochs", "2", "--set", "devices=2",
                          "--set", "accelerator=cpu", "--set", "precision=32", "--no-progress"],
                         env=env, cwd=tmp_path, capture_output=True, text=True, timeout=280)
    assert run.returncode == 0, run.stderr[-3000:]
    preds = pd.read_csv(tmp_path / "res" / "predictions.csv")
    assert preds.groupby("method").size().to_dict() == {"chmfl": 8, "suvmax-volume": 8}
    done = json.loads((tmp_path / "res" / "chmfl" / "repeat_0" / "fold_1" / "done.json").read_text())
    assert done["runtime"]["devices"] == 2 and done["epochs"] == 2
