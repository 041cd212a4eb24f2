"""Plots from the stored predictions and embeddings: ROC (Figs 3-4), confusion matrices
(Fig S1), the CFL weight sweep (Fig 5) and t-SNE of learned features (Fig 7).

Matplotlib's object API only (``Figure``; no pyplot, no global backend state). Each builder
returns a ``FigureOut`` or a ``str``: the one-line reason the figure is omitted.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from chmfl.report.load import Results
from chmfl.report.paper import paper_data, paper_table
from chmfl.report.tables import sweep_data
from chmfl.stats import auc_score, confusion_counts

TSNE_SEED = 0
_GRID = np.linspace(0.0, 1.0, 201)
_MARKERS = "osD^vP*Xh<>"


@dataclass(frozen=True)
class FigureOut:
    name: str  # file stem under DIR/figures/
    title: str
    figure: Figure
    caption: str = ""


def method_colors(methods: list[str], reference: str | None) -> dict[str, tuple]:
    """A stable colour per method (tab10/tab20 cycle); the reference method in black."""
    import matplotlib

    cmap = matplotlib.colormaps["tab10" if len(methods) <= 10 else "tab20"]
    others = [m for m in methods if m != reference]
    colors = {m: cmap(i % cmap.N) for i, m in enumerate(others)}
    if reference in methods:
        colors[reference] = (0.0, 0.0, 0.0, 1.0)
    return colors


def _roc_points(y: np.ndarray, p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.metrics import roc_curve

    fpr, tpr, _ = roc_curve(y, p)
    return fpr, tpr


def _interp(fpr: np.ndarray, tpr: np.ndarray) -> np.ndarray:
    out = np.interp(_GRID, fpr, tpr)
    out[0] = 0.0
    return out


def _mean_roc(parts) -> tuple[np.ndarray, float] | None:
    """Vertical average of the ROC curves of ``parts`` (label/probability frames) and mean AUC."""
    curves, aucs = [], []
    for part in parts:
        y, p = part["label"].to_numpy(), part["probability"].to_numpy()
        if len(set(y)) < 2:
            continue
        curves.append(_interp(*_roc_points(y, p)))
        aucs.append(auc_score(y, p))
    if not curves:
        return None
    return np.mean(curves, axis=0), float(np.mean(aucs))


def _style_roc(ax, title: str) -> None:
    ax.plot([0, 1], [0, 1], ls="--", lw=0.8, color="0.6")
    ax.set(xlim=(-0.01, 1.01), ylim=(-0.01, 1.01), xlabel="1 − specificity (FPR)",
           ylabel="Sensitivity (TPR)", title=title, aspect="equal")
    ax.legend(loc="lower right", fontsize=7, frameon=False)


def roc_figure(res: Results) -> FigureOut | str:
    """Left: mean ROC over test folds (interpolated); right: ROC of pooled test predictions."""
    if res.predictions is None:
        return "no predictions.csv: no ROC curves"
    pred, colors = res.predictions, method_colors(res.methods, res.reference)
    fig = Figure(figsize=(11, 5.2), layout="constrained")
    ax_fold, ax_pool = fig.subplots(1, 2)
    drawn = 0
    for m in res.methods:
        pm = pred[pred["method"] == m]
        if pm.empty:
            continue
        lw = 2.0 if m == res.reference else 1.3
        folds = _mean_roc(part for _, part in pm.groupby(["repeat", "fold"]))
        if folds:
            ax_fold.plot(_GRID, folds[0], color=colors[m], lw=lw, label=f"{m} (AUC {folds[1]:.3f})")
        reps = [part for _, part in pm.groupby("repeat")]
        if len(reps) == 1 and reps[0]["label"].nunique() == 2:
            fpr, tpr = _roc_points(reps[0]["label"].to_numpy(), reps[0]["probability"].to_numpy())
            auc = auc_score(reps[0]["label"], reps[0]["probability"])
            ax_pool.plot(fpr, tpr, color=colors[m], lw=lw, label=f"{m} (AUC {auc:.3f})")
        elif (pooled := _mean_roc(reps)) is not None:
            ax_pool.plot(_GRID, pooled[0], color=colors[m], lw=lw, label=f"{m} (AUC {pooled[1]:.3f})")
        drawn += bool(folds)
    if not drawn:
        return "no fold has both DM and non-DM patients: ROC curves undefined"
    _style_roc(ax_fold, "Mean over test folds (AUC: mean over folds)")
    _style_roc(ax_pool, "Pooled test predictions" + (" (mean over repeats)" if len(res.repeats) > 1 else ""))
    table = paper_table(res.experiment)
    label = f"{table.figure} layout. " if table and table.figure else ""
    return FigureOut("roc", "ROC curves", fig,
                     f"{label}Left: per method, ROC of each test fold interpolated on a common FPR grid and "
                     "averaged (vertical averaging). Right: ROC of all test predictions of a repeat.")


def confusion_figure(res: Results) -> FigureOut | str:
    """Confusion matrix per method at threshold 0.5 on the pooled predictions (Fig S1)."""
    if res.predictions is None:
        return "no predictions.csv: no confusion matrices"
    methods = [m for m in res.methods if m in set(res.predictions["method"])]
    ncols = min(4, len(methods))
    nrows = -(-len(methods) // ncols)
    fig = Figure(figsize=(2.9 * ncols, 2.8 * nrows), layout="constrained")
    axes = np.atleast_1d(fig.subplots(nrows, ncols)).ravel()
    for ax, m in zip(axes, methods):
        pm = res.predictions[res.predictions["method"] == m]
        c = confusion_counts(pm["label"], pm["probability"], 0.5)
        mat = np.array([[c["tn"], c["fp"]], [c["fn"], c["tp"]]], dtype=float)
        rates = mat / np.maximum(mat.sum(axis=1, keepdims=True), 1)
        ax.imshow(rates, cmap="Blues", vmin=0, vmax=1)
        for (i, j), v in np.ndenumerate(mat):
            ax.text(j, i, f"{int(v)}\n({100 * rates[i, j]:.1f}%)", ha="center", va="center", fontsize=9,
                    color="white" if rates[i, j] > 0.6 else "black")
        ax.set(xticks=[0, 1], yticks=[0, 1], xticklabels=["no DM", "DM"], yticklabels=["no DM", "DM"],
               xlabel="Predicted", ylabel="True", title=m)
        ax.title.set_fontsize(9)
    for ax in axes[len(methods):]:
        ax.set_axis_off()
    reps = len(res.repeats)
    return FigureOut("confusion", "Confusion matrices (pooled test predictions)", fig,
                     "DM predicted when P(DM) ≥ 0.5; counts over all test patients"
                     + (f" of all {reps} repeats" if reps > 1 else "") + "; percentages of each true class (row).")


def sweep_figure(res: Results) -> FigureOut | str:
    """Accuracy, sensitivity, specificity and AUC against the CFL weight w (Fig 5)."""
    data = sweep_data(res)
    if data["w"].nunique() < 2:
        return "fewer than two methods named <method>[seg_weight=w]: no weight sweep (Fig 5)"
    bases = list(dict.fromkeys(data["base"]))
    fig = Figure(figsize=(5.5 * len(bases), 4.2), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, len(bases)))
    best = paper_data()["fig5"]["best_weight"]
    for ax, base in zip(axes, bases):
        span = float(np.ptp(data["w"])) or 1.0
        for i, (k, marker) in enumerate(zip(("accuracy", "sensitivity", "specificity", "auc"), "osD^")):
            d = data[(data["base"] == base) & (data["metric"] == k)]
            dodge = (i - 1.5) * 0.012 * span  # side by side, so error bars do not hide each other
            ax.errorbar(d["w"] + dodge, d["mean"], yerr=d["sd"].fillna(0), marker=marker, capsize=2, lw=1.3,
                        elinewidth=0.8, label="AUC" if k == "auc" else k)
        ax.axvline(best, ls="--", color="0.5", lw=0.9, label=f"paper: best w = {best:g}")
        ax.set_xticks(sorted(set(data.loc[data["base"] == base, "w"])))
        ax.set(xlabel="CFL weight w (Eq. 1)", ylabel="mean ± SD over folds", title=base, ylim=(0, 1.05))
        ax.legend(fontsize=8, frameon=False, loc="lower right")
    return FigureOut("weight_sweep", "Effect of the CFL weight w (Fig 5)", fig,
                     "Methods named <method>[seg_weight=w]; error bars: SD over folds. The dashed line marks the "
                     "paper's statement that the best performance was achieved at w = 0.5.")


def _embeddings(res: Results, method: str) -> pd.DataFrame | None:
    """Test-patient embeddings of the first repeat that has any, every fold concatenated."""
    for r in res.repeats:
        frames = []
        for _, k, d in res.fold_dirs(method, r):
            path = d / "embeddings.csv"
            if path.is_file():
                df = pd.read_csv(path, dtype={"patient_id": str})
                frames.append(pd.concat([df, pd.Series(k, index=df.index, name="fold")], axis=1))
        if frames:
            common = set.intersection(*({c for c in f.columns if c[:1] == "f" and c[1:].isdigit()} for f in frames))
            if common:
                cols = sorted(common, key=lambda c: int(c[1:]))
                return pd.concat([f[["patient_id", "label", "fold", *cols]] for f in frames], ignore_index=True)
    return None


def _tsne(features: np.ndarray) -> np.ndarray:
    from sklearn.manifold import TSNE

    x = features - features.mean(axis=0)
    sd = x.std(axis=0)
    x = x / np.where(sd > 0, sd, 1.0)
    perplexity = float(min(30.0, max(2.0, (len(x) - 1) / 3.0)))
    method = "exact" if len(x) <= 1000 else "barnes_hut"  # exact is faster and precise for a cohort this size
    return TSNE(n_components=2, perplexity=perplexity, init="pca", method=method,
                random_state=TSNE_SEED).fit_transform(x)


def tsne_figure(res: Results) -> FigureOut | str:
    """t-SNE (fixed seed) of each method's learned features of its test patients (Fig 7)."""
    found = [(m, e) for m in res.methods if (e := _embeddings(res, m)) is not None and len(e) >= 5]
    if not found:
        return "no embeddings.csv (with at least 5 patients) in any fold folder: no t-SNE (Fig 7)"
    ncols = min(4, len(found))
    nrows = -(-len(found) // ncols)
    fig = Figure(figsize=(4.2 * ncols, 4.2 * nrows), layout="constrained")
    axes = np.atleast_1d(fig.subplots(nrows, ncols)).ravel()
    for ax in axes[len(found):]:
        ax.set_axis_off()
    for ax, (m, emb) in zip(axes, found):
        xy = _tsne(emb[[c for c in emb.columns if c[:1] == "f" and c[1:].isdigit()]].to_numpy(float))
        for label, color in ((0, "tab:blue"), (1, "tab:red")):
            for i, fold in enumerate(sorted(set(emb["fold"]))):
                sel = ((emb["label"] == label) & (emb["fold"] == fold)).to_numpy()
                ax.scatter(xy[sel, 0], xy[sel, 1], c=color, marker=_MARKERS[i % len(_MARKERS)], s=28,
                           edgecolors="white", linewidths=0.5)
        ax.set(title=m, xticks=[], yticks=[])
        ax.legend(handles=_tsne_legend(sorted(set(emb["fold"]))), fontsize=7, frameon=False, ncol=4,
                  loc="upper center", bbox_to_anchor=(0.5, -0.01))  # below the points, not over them
    return FigureOut("tsne", "t-SNE of learned features (Fig 7)", fig,
                     f"Test-patient features from each fold's embeddings.csv (one repeat), z-scored, t-SNE with "
                     f"seed {TSNE_SEED}. Colour: label (red DM, blue no DM). Marker shape: the test fold the patient "
                     "was in, i.e. which fold's model made the features (the legend lists the shapes); points of "
                     "different shapes come from different models, so distances between them mean less.")


def _tsne_legend(folds: list) -> list:
    """Legend entries: the two label colours, then one grey marker per test fold."""
    from matplotlib.lines import Line2D

    labels = [Line2D([], [], ls="", marker="o", color=c, label=name)
              for c, name in (("tab:red", "DM"), ("tab:blue", "no DM"))]
    shapes = [Line2D([], [], ls="", marker=_MARKERS[i % len(_MARKERS)], color="0.45", label=f"fold {fold}")
              for i, fold in enumerate(folds)]
    return labels + shapes
