"""The tiny trained model every predict test uses (trained once per session)."""

from __future__ import annotations

import shutil

import pandas as pd
import pytest

from chmfl.cv.runner import RunOptions
from chmfl.cv.train import train_final
from chmfl.preprocess.bundle import demo_cache_dir

TINY_TRAIN = {"epochs": 1, "batch_size": 4, "precision": "32"}


def _small_cache(root, n=8):
    """The first ``n`` labelled patients of the bundled (real, 4 mm) demo cache."""
    src = demo_cache_dir()
    manifest = pd.read_csv(src / "manifest.csv", dtype={"patient_id": str})
    manifest = manifest[manifest["dm"].notna()].head(n)
    for rel in manifest["path"]:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(src / rel, root / rel)
    manifest.to_csv(root / "manifest.csv", index=False)
    shutil.copy(src / "prepare_config.yaml", root / "prepare_config.yaml")
    return root


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory):
    cache = _small_cache(tmp_path_factory.mktemp("cache"))
    out = tmp_path_factory.mktemp("model")
    opts = RunOptions(seed=0, train=TINY_TRAIN, progress=False)
    # a narrow CHMFL keeps these tests fast; the saved folder is a real chmfl model all the same
    tiny = {"widths": [4, 8, 16, 32, 64], "decoder_convs": [1, 1, 1, 1], "decoder_kernel": 3}
    return train_final("chmfl", cache, out, opts, model_kwargs=tiny)
