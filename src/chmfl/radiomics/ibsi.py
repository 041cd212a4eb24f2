"""IBSI names of pyradiomics features (Zwanenburg et al., IBSI reference manual, chapter 3).

``IBSI_TAGS`` maps a pyradiomics feature name (without ``original_``) to the IBSI tag of the
feature it computes *with the same definition*; texture matrices are IBSI's "3D, averaged"
(GLCM, GLRLM: one matrix per direction, features averaged) or "3D" (GLSZM, NGTDM, NGLDM)
variants, as pyradiomics computes them. Features defined differently from IBSI (kurtosis, the
PCA axis lengths: see tests/radiomics/test_radiomics_ibsi_phantom.py) and features IBSI lacks
keep pyradiomics' names. Morphology: pyradiomics' ``MeshVolume`` (marching-cubes mesh) is
IBSI ``morph_volume``; ``VoxelVolume`` (voxel count x voxel volume) is ``morph_vol_approx``.
"""

from __future__ import annotations

_GLCM = {
    "MaximumProbability": "joint_max", "JointAverage": "joint_avg", "SumSquares": "joint_var",
    "JointEntropy": "joint_entr", "DifferenceAverage": "diff_avg", "DifferenceVariance": "diff_var",
    "DifferenceEntropy": "diff_entr", "SumAverage": "sum_avg", "SumEntropy": "sum_entr",
    "JointEnergy": "energy", "Contrast": "contrast", "Id": "inv_diff", "Idn": "inv_diff_norm",
    "Idm": "inv_diff_mom", "Idmn": "inv_diff_mom_norm", "InverseVariance": "inv_var",
    "Correlation": "corr", "Autocorrelation": "auto_corr", "ClusterTendency": "clust_tend",
    "ClusterShade": "clust_shade", "ClusterProminence": "clust_prom", "Imc1": "info_corr1",
    "Imc2": "info_corr2",
}
_GLRLM = {
    "ShortRunEmphasis": "sre", "LongRunEmphasis": "lre", "LowGrayLevelRunEmphasis": "lgre",
    "HighGrayLevelRunEmphasis": "hgre", "ShortRunLowGrayLevelEmphasis": "srlge",
    "ShortRunHighGrayLevelEmphasis": "srhge", "LongRunLowGrayLevelEmphasis": "lrlge",
    "LongRunHighGrayLevelEmphasis": "lrhge", "GrayLevelNonUniformity": "glnu",
    "GrayLevelNonUniformityNormalized": "glnu_norm", "RunLengthNonUniformity": "rlnu",
    "RunLengthNonUniformityNormalized": "rlnu_norm", "RunPercentage": "r_perc",
    "GrayLevelVariance": "gl_var", "RunVariance": "rl_var", "RunEntropy": "rl_entr",
}
_GLSZM = {
    "SmallAreaEmphasis": "sze", "LargeAreaEmphasis": "lze", "LowGrayLevelZoneEmphasis": "lgze",
    "HighGrayLevelZoneEmphasis": "hgze", "SmallAreaLowGrayLevelEmphasis": "szlge",
    "SmallAreaHighGrayLevelEmphasis": "szhge", "LargeAreaLowGrayLevelEmphasis": "lzlge",
    "LargeAreaHighGrayLevelEmphasis": "lzhge", "GrayLevelNonUniformity": "glnu",
    "GrayLevelNonUniformityNormalized": "glnu_norm", "SizeZoneNonUniformity": "zsnu",
    "SizeZoneNonUniformityNormalized": "zsnu_norm", "ZonePercentage": "z_perc",
    "GrayLevelVariance": "gl_var", "ZoneVariance": "zs_var", "ZoneEntropy": "zs_entr",
}
_GLDM = {
    "SmallDependenceEmphasis": "lde", "LargeDependenceEmphasis": "hde", "LowGrayLevelEmphasis": "lgce",
    "HighGrayLevelEmphasis": "hgce", "SmallDependenceLowGrayLevelEmphasis": "ldlge",
    "SmallDependenceHighGrayLevelEmphasis": "ldhge", "LargeDependenceLowGrayLevelEmphasis": "hdlge",
    "LargeDependenceHighGrayLevelEmphasis": "hdhge", "GrayLevelNonUniformity": "glnu",
    "DependenceNonUniformity": "dcnu", "DependenceNonUniformityNormalized": "dcnu_norm",
    "GrayLevelVariance": "gl_var", "DependenceVariance": "dc_var", "DependenceEntropy": "dc_entr",
}

IBSI_TAGS: dict[str, str] = {
    "shape_MeshVolume": "morph_volume", "shape_VoxelVolume": "morph_vol_approx",
    "shape_SurfaceArea": "morph_area_mesh", "shape_SurfaceVolumeRatio": "morph_av",
    "shape_Sphericity": "morph_sphericity", "shape_Maximum3DDiameter": "morph_diam",
    "shape_Elongation": "morph_pca_elongation", "shape_Flatness": "morph_pca_flatness",
    "shape_Solidity": "morph_vol_dens_conv_hull", "shape_ConvexHullAreaDensity": "morph_area_dens_conv_hull",
    "firstorder_Mean": "stat_mean", "firstorder_Variance": "stat_var", "firstorder_Skewness": "stat_skew",
    "firstorder_Median": "stat_median", "firstorder_Minimum": "stat_min", "firstorder_10Percentile": "stat_p10",
    "firstorder_90Percentile": "stat_p90", "firstorder_Maximum": "stat_max",
    "firstorder_InterquartileRange": "stat_iqr", "firstorder_Range": "stat_range",
    "firstorder_MeanAbsoluteDeviation": "stat_mad", "firstorder_RobustMeanAbsoluteDeviation": "stat_rmad",
    "firstorder_Energy": "stat_energy", "firstorder_RootMeanSquared": "stat_rms",
    "firstorder_Entropy": "ih_entropy", "firstorder_Uniformity": "ih_uniformity",
    **{f"glcm_{k}": f"cm_{v}_3D_avg" for k, v in _GLCM.items()},
    **{f"glrlm_{k}": f"rlm_{v}_3D_avg" for k, v in _GLRLM.items()},
    **{f"glszm_{k}": f"szm_{v}_3D" for k, v in _GLSZM.items()},
    **{f"gldm_{k}": f"ngl_{v}_3D" for k, v in _GLDM.items()},
    **{f"ngtdm_{k}": f"ngt_{k.lower()}_3D" for k in ("Coarseness", "Contrast", "Busyness", "Complexity", "Strength")},
}


def ibsi_name(name: str) -> str:
    """The IBSI tag of pyradiomics feature ``name`` where IBSI defines it the same way, else ``name``."""
    return IBSI_TAGS.get(name, name)
