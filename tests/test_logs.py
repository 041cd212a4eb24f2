"""One log line per fact: no library chatter, no progress-bar codes in log files, the epoch
bar names training AUC as such."""

from __future__ import annotations

import subprocess
import sys

from tests.synthetic import make_cases, neural_method

from chmfl.cli import args as cli_args


def test_lightning_precision_notice_is_not_logged():
    """Lightning sets its loggers to INFO on import and prints through a handler of its own as
    well as the root's: 'Using bfloat16 Automatic Mixed Precision (AMP)' appeared twice per fold."""
    code = ("import logging; from chmfl.cli.main import quiet_libraries; "
            "logging.basicConfig(level=logging.INFO); quiet_libraries(); "
            "from lightning.fabric import Fabric; Fabric(accelerator='cpu', precision='bf16-mixed'); "
            "logging.getLogger('chmfl').info('still logging')")
    err = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stderr
    assert "Automatic Mixed Precision" not in err and "still logging" in err


def test_no_bars_when_stderr_is_not_a_terminal(monkeypatch):
    monkeypatch.setattr(sys.stderr, "isatty", lambda: False)
    assert not cli_args.show_progress(False)
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    assert cli_args.show_progress(False) and not cli_args.show_progress(True)


def test_epoch_bar_names_training_auc(capsys):
    tiny = {"widths": (4, 8, 16, 32, 64), "decoder_convs": (1, 1, 1, 1), "decoder_kernel": 3}
    neural_method("chmfl", "chmfl", tiny, {"epochs": 1, "batch_size": 4, "precision": "32"}, seed=0,
                  progress=True).fit(make_cases(4))
    bar = capsys.readouterr().err
    assert "train_auc=" in bar and " auc=" not in bar
