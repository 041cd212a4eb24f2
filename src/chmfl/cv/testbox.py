"""Where the test patients' boxes come from: the contour (the paper) or the hotspot rule.

``chmfl cv`` / ``reproduce --test-box contour|hotspot|contour,hotspot``:

* ``contour`` (the paper's placement): every box, test patients' included, is centred on the
  patient's expert contour; results are labelled by the method's name.
* ``hotspot``: each *test* patient's box is the one ``chmfl predict`` places on a new study
  without a contour -- ``preprocess.pipeline.hotspot_case`` (``locate_tumour``), stored by
  ``chmfl data prepare`` beside the contour box, so folds do not relocalise. Training patients
  keep their contour boxes. A test patient the localiser refuses gets no probability (nothing
  is computed on a guess) and is listed in ``test_boxes.csv`` and config.yaml. Methods that
  read the test patient's contour when they predict (``Method.needs_contour``) are left out
  with the reason logged and recorded; the rest are labelled ``LABEL@hotspot``. The test
  case's contour is never given to the method (``CaseData.load`` hides it), only to the
  segmentation metrics.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import pandas as pd

from chmfl.data.cases import CaseData
from chmfl.errors import ChmflError
from chmfl.methods.registry import create
from chmfl.methods.spec import MethodRun

log = logging.getLogger(__name__)

TEST_BOXES = ("contour", "hotspot")
PLACEMENT = {
    "contour": "centred on each test patient's expert contour (the paper's placement)",
    "hotspot": "placed without the contour, as 'chmfl predict' places it on a new study "
               "(locate_tumour); training patients keep contour-centred boxes",
}


def parse_test_boxes(value: str | Sequence[str]) -> tuple[str, ...]:
    """``"contour"``, ``"hotspot"`` or ``"contour,hotspot"`` (both regimes on the same splits)."""
    items = [v.strip() for v in value.split(",")] if isinstance(value, str) else [str(v) for v in value]
    bad = [v for v in items if v not in TEST_BOXES]
    if bad or not items or len(set(items)) != len(items):
        raise ChmflError(f"--test-box takes contour, hotspot or contour,hotspot; got {','.join(items)!r}")
    return tuple(items)


def hotspot_status(case: CaseData) -> str:
    """"chosen" when the cache holds the case's hotspot box, else "refused: why"."""
    meta = case.in_box("contour").load().meta
    status = meta.get("hotspot_box")
    if status is None:
        raise ChmflError(f"the cache of patient {case.patient_id} holds no hotspot test box (prepared by an "
                         "older chmfl): run 'chmfl data prepare' again for --test-box hotspot")
    return str(status)


def test_cases(cases: Sequence[CaseData], box: str) -> tuple[dict[str, CaseData], dict[str, str]]:
    """The patients as test cases in ``box`` (id -> case) and those the localiser refused
    (id -> reason)."""
    if box == "contour":
        return {c.patient_id: c for c in cases}, {}
    usable, refused = {}, {}
    for c in cases:
        status = hotspot_status(c)
        if status == "chosen":
            usable[c.patient_id] = c.in_box(box)
        else:
            refused[c.patient_id] = status.removeprefix("refused: ")
    if refused:
        log.warning("hotspot test boxes: the localiser refused %d of %d patients (%s); they get no "
                    "probability", len(refused), len(cases), ", ".join(sorted(refused)))
    return usable, refused


def contour_needs(runs: Sequence[MethodRun]) -> dict[str, str]:
    """label -> why, for the runs whose method reads the test patient's contour."""
    needs = {}
    for run in runs:
        why = create(run).needs_contour()
        if why:
            needs[run.label] = why
    return needs


def box_table(cases: Sequence[CaseData], boxes: Sequence[str], refused: dict[str, str]) -> pd.DataFrame:
    """``test_boxes.csv``: per patient and regime, the decision and how much of the tumour the
    test box holds (``mask_fraction_in_box``), the hotspot box's distance to the contour's centre."""
    rows = []
    for box in boxes:
        for c in cases:
            row = {"test_box": box, "patient_id": c.patient_id, "label": c.label}
            if c.patient_id in refused and box == "hotspot":
                rows.append(row | {"decision": "refused", "reason": refused[c.patient_id]})
                continue
            meta = c.in_box(box)._stored().meta
            contour = c.in_box("contour").load().meta
            row |= {"decision": "chosen" if box == "hotspot" else "contour",
                    "tumour_in_box": meta.get("mask_fraction_in_box"),
                    "centre_error_mm": contour.get("hotspot_error_mm") if box == "hotspot" else 0.0}
            rows.append(row)
    return pd.DataFrame(rows)


def record(boxes: Sequence[str], refused: dict[str, str], left_out: dict[str, str], table: pd.DataFrame) -> dict:
    """What config.yaml says about the test boxes."""
    out: dict = {"regimes": list(boxes), "placement": {b: PLACEMENT[b] for b in boxes}}
    for box in boxes:
        part = table[(table.test_box == box) & table.tumour_in_box.notna()]
        out[f"{box}_tumour_in_box"] = {
            "mean": round(float(part.tumour_in_box.mean()), 4) if len(part) else None,
            "whole_tumour": int((part.tumour_in_box >= 0.999).sum()), "n": len(part)}
    if "hotspot" in boxes:
        out["hotspot_refused"] = {pid: refused[pid] for pid in sorted(refused)}
        out["hotspot_n_refused"] = len(refused)
        out["hotspot_left_out"] = {f"{k}@hotspot": f"needs a contour at test time: {v}" for k, v in left_out.items()}
    return out
