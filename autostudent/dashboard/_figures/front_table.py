"""The students on one study's front as a table, against the teacher, with their export command."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go

from autostudent import objectives as objs
from autostudent.dashboard._data import StudyData
from autostudent.dashboard._figures.style import apply_layout
from autostudent.dashboard._figures.text import fmt_size, kd_text


def front_trials(study: StudyData) -> pd.DataFrame:
    size = study.size_objective
    t = study.trials
    return t[t[f"front_{size}"]].sort_values(size)


def front_table(study: StudyData) -> go.Figure:
    """The students worth taking: the front, smallest first, against the teacher."""
    size = study.size_objective
    front = front_trials(study)
    teacher_acc = study.teacher.get("val_accuracy")
    teacher_size = study.teacher.get(objs.objective(size).result_key)
    margin = {r["trial"]: r.get("margin_over_baseline") for r in study.summary["pareto"]}
    cells = {
        "trial": front["number"],
        "val acc": front["accuracy"].map("{:.2%}".format),
        "vs teacher": front["accuracy"].map(
            lambda a: f"{100 * (a - teacher_acc):+.2f} pt" if teacher_acc else "?"
        ),
        "params": front["params"].map("{:,.0f}".format),
        f"{size} ÷ teacher": front[size].map(
            lambda v: f"1/{teacher_size / v:.1f}" if teacher_size and v else "?"
        ),
        "vs best baseline": front["number"].map(
            lambda n: "—" if margin.get(n) is None else f"{margin[n]:+.2f} pt"
        ),
        "FLOPs": front["flops"].map(lambda v: fmt_size(v, "flops")),
        "latency": front["latency_ms"].map(lambda v: fmt_size(v, "latency_ms")),
        "KD": [kd_text(row).removeprefix("KD ") for _, row in front.iterrows()],
        "architecture": front["arch"],
        "take it home": front["number"].map(
            lambda n: (
                f"autostudent export --storage {study.storage} --study {study.name} "
                f"--trial {n} --out student-{n}"
            )
        ),
    }
    fig = go.Figure(
        go.Table(
            columnwidth=[40, 60, 70, 70, 80, 80, 60, 60, 140, 260, 330],
            header={
                "values": [f"<b>{k}</b>" for k in cells],
                "fill_color": "#e9ecef",
                "align": "left",
            },
            cells={
                "values": [list(v) for v in cells.values()],
                "align": "left",
                "fill_color": "white",
                "height": 24,
            },
        )
    )
    note = (
        f"validation accuracy after the search's short budget ({_epochs(study)} epochs); "
        "export retrains in full and measures on the test split. vs best baseline: test "
        "accuracy over the best hand-designed student of at most its size, both retrained with "
        "export's recipe (mean over seeds; — until `autostudent baselines` has run)"
    )
    return apply_layout(
        fig,
        f"Pareto-front students — {study.name}<br><sup>{note}</sup>",
        height=170 + 48 * max(len(front), 1),
        margin={"l": 10, "r": 10, "t": 90, "b": 10},
    )


def _epochs(study: StudyData) -> str:
    values = study.trials["max_epochs"].dropna()
    return str(int(values.max())) if len(values) else "?"
