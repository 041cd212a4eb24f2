"""Handcrafted radiomics: IBSI-conformant pyradiomics features of PET and CT inside the
tumour, the memoised cohort table, and the per-fold feature transform (impute, filter,
select, standardise) that the classical and hybrid methods share."""

from chmfl.radiomics.extract import extract_features, extract_with_params, load_params
from chmfl.radiomics.table import case_features, feature_table
from chmfl.radiomics.transform import FeatureTransform, fit_feature_transform

__all__ = [
    "FeatureTransform",
    "case_features",
    "extract_features",
    "extract_with_params",
    "feature_table",
    "fit_feature_transform",
    "load_params",
]
