"""Table SI on the meta device, every network at the paper's box size, and the CLI."""

from __future__ import annotations

import json

import pytest

from chmfl.cli.main import main
from chmfl.models import MODELS
from chmfl.models.summary import summarize

# Table SI, "Output Size" column, at a 112 x 112 x 144 input
TABLE_SI = {
    "pet_encoder.input_transition": (1, 16, 112, 112, 144),
    "pet_encoder.down_conv1": (1, 32, 56, 56, 72),
    "pet_encoder.down_conv2": (1, 64, 28, 28, 36),
    "pet_encoder.down_conv3": (1, 128, 14, 14, 18),
    "pet_encoder.down_conv4": (1, 256, 7, 7, 9),
    "ct_encoder.down_conv4": (1, 256, 7, 7, 9),
    "decoder.up_conv1": (1, 128, 14, 14, 18),
    "decoder.up_conv2": (1, 64, 28, 28, 36),
    "decoder.up_conv3": (1, 32, 56, 56, 72),
    "decoder.up_conv4": (1, 16, 112, 112, 144),
    # each whole level (Up_Conv + horizontal connection + residual unit) keeps Table SI's width
    "decoder.res1": (1, 128, 14, 14, 18),
    "decoder.res2": (1, 64, 28, 28, 36),
    "decoder.res3": (1, 32, 56, 56, 72),
    "decoder.res4": (1, 16, 112, 112, 144),
    "decoder.output_transition": (1, 2, 112, 112, 144),
}


@pytest.mark.parametrize("options", [{}, {"encoder_residual": True}, {"norm": "group8"}])
def test_table_si_sizes_on_meta_device(options):
    s = summarize("chmfl", (112, 112, 144), **options)
    sizes = {b.name: b.output for b in s.blocks}
    for block, size in TABLE_SI.items():
        assert sizes[block] == size, block
    assert s.outputs["logits"] == (1, 2) and s.outputs["features"] == (1, 992)
    assert s.total_params == sum(b.params for b in s.blocks if "." not in b.name)
    assert s.total_flops == sum(b.flops for b in s.blocks if "." not in b.name) > 5e11


def test_flops_scale_with_voxels_and_residual_stacks_cost_more():
    one_mm = summarize("chmfl", (112, 112, 144)).total_flops
    four_mm = summarize("chmfl", (28, 28, 36)).total_flops
    assert 50 < one_mm / four_mm < 70  # 64x fewer voxels, plus rounding at odd sizes
    assert summarize("chmfl", (28, 28, 36), encoder_residual=True).total_flops > four_mm
    # the input transition: 16 filters of 5^3 on every voxel, 2 FLOPs per multiply-add
    s = summarize("chmfl", (28, 28, 36))
    it = next(b for b in s.blocks if b.name == "pet_encoder.input_transition")
    assert it.flops == 2 * 16 * 125 * 28 * 28 * 36


@pytest.mark.parametrize("name", sorted(MODELS))
def test_every_network_runs_at_the_paper_box_size_without_memory(name):
    s = summarize(name, (112, 112, 144), batch=2)
    assert s.outputs["logits"] == (2, 2)
    assert s.total_params > 0 and s.total_flops > 0
    if MODELS[name].segments:
        assert s.outputs["seg_logits"][:2] == (2, 2)


def test_two_mm_box():
    s = summarize("chmfl", (56, 56, 72))
    assert s.outputs["seg_logits"] == (1, 2, 56, 56, 72)


def test_cli_prints_table_si(capsys):
    assert main(["model-summary", "chmfl", "--input", "112", "112", "144"]) == 0
    out = capsys.readouterr().out
    lines = {line.split()[0]: line for line in out.splitlines() if line.strip()}
    assert "1 x 16 x 112 x 112 x 144" in lines["pet_encoder.input_transition"]
    assert "1 x 128 x 14 x 14 x 18" in lines["decoder.up_conv1"]
    assert "1 x 2 x 112 x 112 x 144" in lines["decoder.output_transition"]
    assert "GFLOPs per forward pass" in out


def test_cli_accepts_method_names_and_json(capsys):
    assert main(["model-summary", "cnn3d-pet", "--input", "28", "28", "36", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["model"] == "cnn3d" and data["options"] == {"modality": "pet"}
    assert main(["model-summary", "chmfl-gn8", "--input", "28", "28", "36", "--batch", "2"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("chmfl (norm=group8)") and "2 x 16 x 28 x 28 x 36" in out


def test_cli_errors_are_one_line(capsys):
    assert main(["model-summary", "no-such-net", "--input", "28", "28", "36"]) == 2
    assert main(["model-summary", "chmfl", "--input", "8", "8", "8"]) == 2
    assert main(["model-summary", "chmfl", "--input", "28", "28", "36", "--set", "colour=red"]) == 2
    err = capsys.readouterr().err
    assert err.count("chmfl: error:") == 3 and "Traceback" not in err
