"""The report's nested-selection section, from ``selection.csv`` alone: each outer fold's pick
with its inner score beside the runner-up, and how often each candidate was picked.

The outer predictions of a selecting run are what every other table reports; these tables
only show what the inner cross-validation chose, so a reader can see how stable the choice is.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pandas as pd

from chmfl.report.load import Results
from chmfl.report.render import Table, fmt, mean_sd


def _metric_name(sel: pd.DataFrame) -> str:
    return "/".join(sorted(set(sel["metric"].astype(str)))).upper().replace("C_INDEX", "C-index")


def picks_table(res: Results) -> Table | str:
    """One row per (method, repeat, outer fold): the pick, its mean inner score, the runner-up."""
    sel = res.selection
    if sel is None or sel.empty:
        return "no method of this run selects its settings (no selection.csv)"
    display, data = [], []
    for (method, repeat, fold), g in sel.groupby(["method", "repeat", "fold"], sort=True):
        g = g.sort_values("candidate")
        pick = g[g["picked"]].iloc[0]
        rest = g[~g["picked"]].sort_values("score", ascending=False, kind="stable")
        second = rest.iloc[0] if len(rest) else None
        display.append({"Method": method, "Repeat": int(repeat), "Outer fold": int(fold), "Pick": pick["settings"],
                        "Inner score": mean_sd(pick["score"], pick["sd"]),
                        "Runner-up": "–" if second is None else f"{second['settings']} ({fmt(second['score'])})"})
        data.append({"method": method, "repeat": int(repeat), "fold": int(fold), "pick": pick["settings"],
                     "score": pick["score"], "sd": pick["sd"],
                     "runner_up": None if second is None else second["settings"],
                     "runner_up_score": None if second is None else second["score"]})
    note = (f"Each outer training fold was split again (stratified inner CV seeded by the outer fold's seed); every "
            f"candidate was scored by its mean inner-test {_metric_name(sel)} (± SD over inner folds), the best was "
            "refitted on the whole outer training fold and predicted the outer test fold. No outer test patient "
            "reaches the choice; only the outer predictions enter the other tables.")
    return Table("selection_picks", "Nested selection: the pick in every outer fold", pd.DataFrame(display),
                 pd.DataFrame(data), note)


def counts_table(res: Results) -> Table | str:
    """How often each candidate was picked, with its mean inner score over the outer folds."""
    sel = res.selection
    if sel is None or sel.empty:
        return "no selection.csv"
    rows = []
    for (method, cand), g in sel.groupby(["method", "candidate"], sort=True):
        rows.append({"method": method, "candidate": int(cand), "settings": g["settings"].iloc[0],
                     "picked": int(g["picked"].sum()), "outer_folds": len(g), "mean_inner_score": g["score"].mean()})
    data = pd.DataFrame(rows)
    display = pd.DataFrame({"Method": data["method"], "Candidate": data["settings"],
                            "Picked": [f"{p} / {n}" for p, n in zip(data["picked"], data["outer_folds"])],
                            "Mean inner score": [fmt(v) for v in data["mean_inner_score"]]})
    return Table("selection_counts", "Nested selection: how often each candidate was picked", display, data,
                 "Candidates in the order the experiment declared them; ties went to the earlier one.")


def section(res: Results, safe: Callable) -> Iterator:
    table = safe(picks_table, res)
    yield table
    if not isinstance(table, str):
        yield safe(counts_table, res)
