"""The report's sections, in order. Each yields tables, figures, notes and key/value blocks;
``safe`` wraps every table/figure builder so one failure becomes a note, not a lost report."""

from __future__ import annotations

import platform
from collections.abc import Callable, Iterator
from importlib import metadata

import yaml

from chmfl import __version__
from chmfl.report import calibration_figs, figures, images, protocol, selection, statistics, tables
from chmfl.report import survival as surv
from chmfl.report.html import Details, KeyValues, Note
from chmfl.report.load import Results
from chmfl.report.paper import paper_data, paper_table
from chmfl.stats import CLASSIFICATION_METRICS, SEGMENTATION_METRICS

Safe = Callable


def _paper_comparison(res: Results, safe: Safe, kind: tuple[str, ...]) -> Iterator:
    """The paper's table beside ours, under the one-line protocol comparison, with rows that
    stopped training far from convergence marked (``report.protocol``)."""
    table = paper_table(res.experiment)
    if table and table.metrics[0] in kind:
        yield Note(protocol.protocol_line(res))
        yield protocol.mark_unconverged(safe(tables.comparison_table, res, table), res, "chmfl method")


def _paper_reference(res: Results, safe: Safe) -> Iterator:
    """For a run that is not one of the paper's experiments (the demo): Table I beside it."""
    table = safe(protocol.paper_reference_table, res)
    if table is not None:
        yield Note(protocol.protocol_line(res))
        yield table


def classification(res: Results, safe: Safe) -> Iterator:
    for note in res.notes:
        yield Note(note)
    if res.survival:
        yield Note("DM-free survival run: the methods' risk scores are evaluated in the Survival section.")
        return
    yield safe(tables.classification_table, res)
    yield from _paper_comparison(res, safe, CLASSIFICATION_METRICS)
    yield from _paper_reference(res, safe)
    yield safe(tables.pooled_table, res)
    yield safe(tables.delong_table, res)


def roc(res: Results, safe: Safe) -> Iterator:
    if res.survival:
        yield "a DM-free survival run has no DM probabilities (see the Survival section)"
        return
    yield safe(figures.roc_figure, res)
    yield safe(calibration_figs.reliability_figure, res)
    yield safe(calibration_figs.decision_curve_figure, res)


def survival(res: Results, safe: Safe) -> Iterator:
    if not res.survival:
        yield "not a DM-free survival run (chmfl cv --endpoint dm-free-survival)"
        return
    yield safe(surv.cindex_table, res)
    yield safe(surv.comparisons_table, res)
    yield safe(surv.td_auc_table, res)
    yield safe(surv.km_figure, res)
    yield safe(surv.c_index_figure, res)


def _fig_s1_note(res: Results) -> Note | None:
    if res.experiment != "table1":
        return None
    data = paper_data()["fig_s1"]
    counts = "; ".join(f"{c['paper']}: TP {c['tp']}, FN {c['fn']}, TN {c['tn']}, FP {c['fp']}"
                       for c in data["derived_counts"])
    return Note(f"Paper, Fig. S1: \"{data['statement']}\" Counts implied by Table I (not printed): {counts}.")


def confusion(res: Results, safe: Safe) -> Iterator:
    if res.survival:
        return
    yield safe(figures.confusion_figure, res)
    if (note := _fig_s1_note(res)) is not None:
        yield note


def sweep(res: Results, safe: Safe) -> Iterator:
    if res.experiment == "fig5":
        yield Note(f"Paper, Fig. 5: \"{paper_data()['fig5']['statement']}\"")
    table = safe(tables.sweep_table, res)
    yield table
    if not isinstance(table, str):
        yield safe(figures.sweep_figure, res)


def learned_features(res: Results, safe: Safe) -> Iterator:
    yield safe(figures.tsne_figure, res)


def saliency(res: Results, safe: Safe) -> Iterator:
    yield safe(images.saliency_figure, res)


def segmentation(res: Results, safe: Safe) -> Iterator:
    yield safe(tables.segmentation_table, res)
    yield safe(tables.whole_tumour_table, res)
    yield from _paper_comparison(res, safe, SEGMENTATION_METRICS)
    yield safe(images.segmentation_figure, res)


def _flatten(value, prefix: str = "") -> list[tuple[str, str]]:
    """(dotted key, text) pairs of a nested config; unset values (None, empty) are left out:
    a reader is shown what was set, never 'None'."""
    if value is None or value == {} or value == []:
        return []
    if isinstance(value, dict):
        return [kv for k, v in value.items() for kv in _flatten(v, f"{prefix}.{k}" if prefix else str(k))]
    if isinstance(value, list):
        if all(isinstance(v, dict) for v in value):
            return [(prefix, "; ".join(", ".join(f"{k}={v}" for k, v in d.items() if v not in (None, {}, []))
                                       for d in value))]
        return [(prefix, ", ".join(map(str, value)))]
    return [(prefix, str(value))]


def _glance(config: dict) -> list[tuple[str, str]]:
    """The few settings a reader looks for first: experiment, methods, folds, seed, data."""
    spec = config.get("spec") if isinstance(config.get("spec"), dict) else {}
    methods = ", ".join(str(m.get("label")) for m in spec.get("methods") or [] if isinstance(m, dict))
    prep = _find(config, "prepare") or {}
    pairs = [("experiment", spec.get("title") or config.get("experiment")), ("methods", methods),
             ("folds × repeats", f"{spec.get('folds')} × {spec.get('repeats')}" if spec else None),
             ("seed", _find(config, "seed")), ("training settings", _flatten(spec.get("train")) or None),
             ("cache", _find(config, "cache")),
             ("preprocessing", _flatten((prep or {}).get("config")) if isinstance(prep, dict) else None)]
    out = []
    for key, value in pairs:
        if isinstance(value, list):
            value = ", ".join(f"{k}={v}" for k, v in value)
        if value not in (None, ""):
            out.append((key, str(value)))
    return out


def _find(config: dict, *names: str):
    """The first value stored under any of ``names`` anywhere in the (nested) config."""
    stack = [config]
    while stack:
        node = stack.pop(0)
        if isinstance(node, dict):
            for name in names:
                if name in node:
                    return node[name]
            stack.extend(node.values())
    return None


def configuration(res: Results, safe: Safe) -> Iterator:
    if res.config:
        yield KeyValues("The run at a glance (config.yaml)", tuple(_glance(res.config)))
        yield Details("config.yaml as stored (every setting; click to open)",
                      yaml.safe_dump(res.config, sort_keys=False, allow_unicode=True, default_flow_style=False))
    else:
        yield "no config.yaml in the results folder"


def _derived_summary(res: Results) -> KeyValues:
    pairs = [("methods", ", ".join(res.methods)), ("repeats", str(len(res.repeats)))]
    if res.predictions is not None:
        first = res.predictions[res.predictions["repeat"] == min(res.predictions["repeat"])]
        labels = first.drop_duplicates("patient_id").set_index("patient_id")["label"]
        pairs += [("test patients (first repeat)", str(len(labels))),
                  ("DM / no DM", f"{int(labels.sum())} / {int((labels == 0).sum())}")]
    if res.splits:
        rep0 = res.splits["repeats"][0]
        label = dict(zip(res.predictions["patient_id"], res.predictions["label"])) if res.predictions is not None else {}
        pairs += [("split seed", str(res.splits.get("seed"))), ("folds", str(res.splits.get("n_folds"))),
                  ("test patients per fold (repeat 0)", ", ".join(str(len(f["test"])) for f in rep0["folds"]))]
        if label:
            pairs.append(("DM per test fold (repeat 0)",
                          ", ".join(str(sum(int(label.get(p, 0)) for p in f["test"])) for f in rep0["folds"])))
    return KeyValues("From the results files", tuple(pairs))


def data(res: Results, safe: Safe) -> Iterator:
    summary = _find(res.config, "data_summary", "data")
    if isinstance(summary, dict) and summary:
        yield KeyValues("Data summary (config.yaml)", tuple(_flatten(summary)))
    else:
        yield "no data summary (patients, labels, exclusions) in config.yaml"
    yield safe(_derived_summary, res)
    yield _test_boxes(res)


def _test_boxes(res: Results) -> KeyValues:
    """How the test patients' boxes were placed (``cv.testbox``): the paper's contour-centred
    boxes unless the run says otherwise; methods left out and patients refused without one."""
    rec = (res.config or {}).get("test_box") or {}
    placement = rec.get("placement") or {"contour": "centred on each test patient's expert contour "
                                                    "(the paper's placement; recorded before test boxes were a choice)"}
    pairs = [(f"test boxes: {box}" + ("" if box == "contour" else " (results labelled METHOD@hotspot)"), text)
             for box, text in placement.items()]
    if "hotspot_n_refused" in rec:
        refused = rec.get("hotspot_refused") or {}
        pairs.append(("hotspot: patients refused by the localiser (no probability)",
                      f"{rec['hotspot_n_refused']}" + (f": {', '.join(refused)}" if refused else "")))
        for label, why in (rec.get("hotspot_left_out") or {}).items():
            pairs.append((f"left out: {label}", why))
    for box in placement:
        if (inbox := rec.get(f"{box}_tumour_in_box")) and inbox.get("n"):
            pairs.append((f"{box}: tumour inside the test box", f"mean {inbox['mean']:.3f}; whole tumour in "
                          f"{inbox['whole_tumour']} of {inbox['n']} patients"))
    return KeyValues("Test boxes", tuple(pairs))


def versions(res: Results, safe: Safe) -> Iterator:
    run = [(key, _find(res.config, *names)) for key, names in (
        ("chmfl version", ("package_version", "chmfl_version", "version")),
        ("git commit", ("git_commit", "commit")),
        ("hardware", ("hardware",)),
        ("run versions", ("versions",)),
        ("seeds", ("seeds", "seed")))]
    pairs = [kv for key, v in run if v is not None for kv in _flatten(v, key)]
    yield KeyValues("Run (config.yaml)", tuple(pairs)) if pairs else "no versions or hardware in config.yaml"
    env = [("chmfl", __version__), ("python", platform.python_version())]
    for pkg in ("numpy", "scipy", "pandas", "scikit-learn", "matplotlib"):
        try:
            env.append((pkg, metadata.version(pkg)))
        except metadata.PackageNotFoundError:
            env.append((pkg, "not installed"))
    yield KeyValues("Report environment", tuple(env))


def run_time(res: Results, safe: Safe) -> Iterator:
    times = [(k, _find(res.config, *names)) for k, names in (
        ("start", ("start_time", "started", "start")), ("end", ("end_time", "finished", "end")))]
    times = [(k, str(v)) for k, v in times if v is not None]
    if times:
        yield KeyValues("Run period (config.yaml)", tuple(times))
    yield safe(tables.timing_table, res)


SECTIONS = (
    ("Classification", "classification", classification),
    ("Statistics", "statistics", statistics.section),
    ("Nested selection", "selection", selection.section),
    ("ROC curves", "roc", roc),
    ("Survival", "survival", survival),
    ("Confusion matrices", "confusion", confusion),
    ("CFL weight sweep", "sweep", sweep),
    ("Learned features", "features", learned_features),
    ("Saliency", "saliency", saliency),
    ("Segmentation", "segmentation", segmentation),
    ("Configuration", "configuration", configuration),
    ("Data", "data", data),
    ("Versions", "versions", versions),
    ("Run time", "run-time", run_time),
)
