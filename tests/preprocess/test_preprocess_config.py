"""``PrepareConfig``: validation, YAML round trip, and the hash that keys the cache."""

from __future__ import annotations

import pytest
import yaml

from chmfl.errors import ChmflError
from chmfl.preprocess.config import IntensityConfig, PrepareConfig


def test_defaults_follow_the_paper():
    config = PrepareConfig()
    assert config.voxel_mm == 1.0 and config.box_shape == (144, 112, 112)
    assert config.mask_from == "ct" and config.intensity.mode == "paper"
    assert PrepareConfig(voxel_mm=4.0).box_shape == (36, 28, 28)


def test_hash_is_stable_and_sensitive():
    a, b = PrepareConfig(), PrepareConfig()
    assert a.hash() == b.hash() and len(a.hash()) == 12
    assert PrepareConfig(voxel_mm=2.0).hash() != a.hash()
    assert PrepareConfig(intensity=IntensityConfig(mode="window")).hash() != a.hash()
    assert PrepareConfig(mask_from="pet").hash() != a.hash()


def test_yaml_round_trip():
    config = PrepareConfig(voxel_mm=4.0, intensity=IntensityConfig(mode="zscore", clip=5.0))
    back = PrepareConfig.from_dict(yaml.safe_load(yaml.safe_dump(config.to_dict())))
    assert back == config and back.hash() == config.hash()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"voxel_mm": 0.0}, "voxel_mm must be > 0"),
        ({"pad": "mirror"}, "pad must be one of"),
        ({"mask_from": "mr"}, "mask_from must be one of"),
        ({"intensity": IntensityConfig(mode="minmax")}, "intensity must be one of"),
        ({"box_mm": (1.0, 1.0)}, "box_mm"),
    ],
)
def test_bad_values(kwargs, message):
    with pytest.raises(ChmflError, match=message):
        PrepareConfig(**kwargs)


def test_unknown_keys():
    with pytest.raises(ChmflError, match="unknown key"):
        PrepareConfig.from_dict({"voxel": 1})
    with pytest.raises(ChmflError, match="unknown IntensityConfig key"):
        PrepareConfig.from_dict({"intensity": {"window": 1}})


def test_hotspot_settings_are_checked_and_old_configs_still_load():
    with pytest.raises(ChmflError, match="margin must be >= 1"):
        PrepareConfig.from_dict({"hotspot": {"margin": 0.5}})
    with pytest.raises(ChmflError, match="fraction in"):
        PrepareConfig.from_dict({"hotspot": {"fraction": 1.5}})
    old = PrepareConfig.from_dict({"hotspot": {"sigma_mm": 4.0, "threshold_suv": 2.5, "fraction": 0.4}})
    assert old.hotspot.margin == 2.0 and old.hotspot.physiological  # a model saved before issue 20
