"""Preprocessing as pure array functions (box centre, resampling onto the isotropic box,
padding, intensity standardisation) and the per-patient cache written by
``chmfl data prepare``. See docs/data.md."""
