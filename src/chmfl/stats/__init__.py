"""Metrics and statistics (no torch): classification and segmentation metrics, the rows of
``metrics.csv``, fold/repeat summaries, the paper's t-test, DeLong's test and bootstrap CIs."""

from chmfl.stats.delong import AucCI, DeLongResult, delong_ci, delong_covariance, delong_test
from chmfl.stats.intervals import Summary, bootstrap_ci, repeat_summary
from chmfl.stats.metrics import (
    ALL_METRICS,
    CLASSIFICATION_METRICS,
    DEFAULT_THRESHOLD,
    SEGMENTATION_METRICS,
    auc_score,
    classification_metrics,
    confusion_counts,
    metrics_from_counts,
    segmentation_metrics,
)
from chmfl.stats.rows import (
    METRICS_COLUMNS,
    POOLED_FOLD,
    fold_rows,
    mean_metrics,
    metrics_rows,
    pooled_rows,
)
from chmfl.stats.summary import fold_table, normalize_metrics, repeat_table, ttest_vs_reference

__all__ = [
    "ALL_METRICS",
    "CLASSIFICATION_METRICS",
    "DEFAULT_THRESHOLD",
    "METRICS_COLUMNS",
    "POOLED_FOLD",
    "SEGMENTATION_METRICS",
    "AucCI",
    "DeLongResult",
    "Summary",
    "auc_score",
    "bootstrap_ci",
    "classification_metrics",
    "confusion_counts",
    "delong_ci",
    "delong_covariance",
    "delong_test",
    "fold_rows",
    "fold_table",
    "mean_metrics",
    "metrics_from_counts",
    "metrics_rows",
    "normalize_metrics",
    "pooled_rows",
    "repeat_summary",
    "repeat_table",
    "segmentation_metrics",
    "ttest_vs_reference",
]
