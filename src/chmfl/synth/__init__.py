"""Synthetic test studies chmfl makes itself: a painted human body (``phantom``) and
whole-body PET-CT studies built around the cohort's cropped ones (``wholebody``), for
testing and benchmarking tumour localisation (``preprocess.localise``)."""
