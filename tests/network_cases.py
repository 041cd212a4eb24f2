"""Every network with small options, shared by the forward tests (tests/models) and the
speed-option tests (tests/accel): name, options, parameters whose gradient must be non-zero
(first conv of each input path, output conv of the decoder)."""

from __future__ import annotations

CHEAP_DECODER = {"decoder_convs": (1, 1, 1, 1), "decoder_kernel": 3}
SIZE = (16, 16, 24)  # D, H, W: small, not a cube

# name, options, parameters whose gradient must be non-zero (first conv of each input path,
# output conv of the decoder)
CASES = [
    ("chmfl", CHEAP_DECODER, ["pet_encoder.input_transition.conv.weight", "ct_encoder.input_transition.conv.weight",
                   "decoder.output_transition.head.weight"]),
    ("cfl", CHEAP_DECODER, ["pet_encoder.input_transition.conv.weight", "ct_encoder.input_transition.conv.weight",
                            "decoder.output_transition.head.weight"]),
    ("mask-hmfl", {}, ["pet_encoder.input_transition.conv.weight", "ct_encoder.input_transition.conv.weight"]),
    ("chmfl-resnet18", {}, ["pet_backbone.conv1.weight", "ct_backbone.conv1.weight",
                            "decoder.output_transition.head.weight"]),
    ("cnn2d", {"modality": "petct"}, ["encoder.input_transition.conv.weight"]),
    ("cnn3d", {"modality": "ct"}, ["encoder.input_transition.conv.weight"]),
    ("resnet18-petct", {}, ["backbone.conv1.weight"]),
    ("cnlpc", {}, ["cv1.weight", "ln4.weight"]),
    ("cnlpc", {"modality": "petct"}, ["cv1.weight"]),
    ("3dmcl", {"n_features": 7}, ["pet_branch.0.weight", "ct_branch.0.weight", "radiomics.0.weight"]),
    ("mor-cnn", {}, ["convs.0.weight"]),
    ("vnet", {}, ["vnet.in_tr.conv_block.conv.weight", "vnet.out_tr.conv_block.conv.weight", "head.weight"]),
]
