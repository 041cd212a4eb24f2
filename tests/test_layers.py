"""The import layers of docs/architecture.md, enforced by import-linter (pyproject.toml's
``[tool.importlinter]``, run by .ci/run): the package keeps them, and one forbidden import
added to a copy of it breaks them."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LINT = shutil.which("lint-imports") or str(Path(sys.executable).with_name("lint-imports"))


def _lint(src: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(src)}
    return subprocess.run([LINT, str(ROOT / "pyproject.toml"), "--no-cache"], cwd=src, env=env,
                          capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def package_copy(tmp_path_factory) -> Path:
    if not Path(LINT).is_file():
        pytest.skip("import-linter is not installed (pip install -e '.[test]')")
    src = tmp_path_factory.mktemp("src")
    shutil.copytree(ROOT / "src" / "chmfl", src / "chmfl", ignore=shutil.ignore_patterns("demo_data", "__pycache__"))
    return src


def test_the_package_keeps_its_layers(package_copy):
    run = _lint(package_copy)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    assert "0 broken" in run.stdout


@pytest.mark.parametrize("module, line, contract", [
    ("models/base.py", "from chmfl.accel import options  # noqa", "networks know nothing of the speed options"),
    ("stats/metrics.py", "import chmfl.cv.splits  # noqa", "pipeline stages import only earlier stages"),
    ("io/volume.py", "def _f():\n    from chmfl.methods import registry  # noqa", "pipeline stages import only earlier stages"),
])
def test_a_forbidden_import_breaks_the_contract(package_copy, tmp_path, module, line, contract):
    src = tmp_path / "src"
    shutil.copytree(package_copy, src)
    path = src / "chmfl" / module
    path.write_text(path.read_text() + "\n\n" + line + "\n")
    run = _lint(src)
    assert run.returncode != 0
    assert f"{contract}" in run.stdout and "BROKEN" in run.stdout
