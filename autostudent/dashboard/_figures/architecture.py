"""The architecture of one study's front students (or of one clicked trial): the graph levels
side by side."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from autostudent.dashboard._architecture import architecture_panels
from autostudent.dashboard._data import StudyData
from autostudent.dashboard._figures.front_table import front_trials
from autostudent.dashboard._figures.style import apply_layout, centre_note
from autostudent.dashboard._figures.text import fmt_size, kd_text


def architecture(study: StudyData, trial: int | None = None) -> go.Figure:
    """The architecture of the front's trials, three graph levels side by side; a menu picks
    the trial (``trial`` draws that one only: the live view's click on a point)."""
    rows = front_trials(study) if trial is None else study.trials[study.trials["number"] == trial]
    rows = rows[rows["spec"].notna()]
    drawn = [(row, architecture_panels(row["spec"])) for _, row in rows.iterrows()]
    columns = max((len(panels) for _, panels in drawn), default=1)
    fig = make_subplots(
        rows=1, cols=columns, horizontal_spacing=0.04, column_widths=[1.6] + [1.0] * (columns - 1)
    )
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    for col in range(1, columns + 1):  # room for the arcs of edges that skip columns
        spread = max(
            (
                max(abs(y) for y in panels[col - 1][1][1].y or [0])
                for _, panels in drawn
                if len(panels) >= col
            ),
            default=0.0,
        )
        half = max(spread, 1.0) + 0.8
        fig.update_yaxes(range=[-half, half], row=1, col=col)

    def panel_titles(panels) -> list[dict]:
        return [
            {
                "text": title,
                "showarrow": False,
                "xref": f"x{i + 1 if i else ''} domain",
                "yref": "paper",
                "x": 0.5,
                "y": 1.02,
                "yanchor": "bottom",
                "font": {"size": 12},
            }
            for i, (title, _) in enumerate(panels)
        ]

    def title(row: pd.Series) -> str:
        kd = kd_text(row)
        return (
            f"Architecture of trial {row['number']} — {study.name}"
            f"<br><sup>{row['arch']} · {fmt_size(row['params'], 'params')} params · "
            f"val acc {row['accuracy']:.2%} · {kd}</sup>"
        )

    buttons = []
    for k, (row, panels) in enumerate(drawn):
        first = len(fig.data)
        for col, (_, traces) in enumerate(panels, start=1):
            for trace in traces:
                trace.visible = k == 0
                fig.add_trace(trace, row=1, col=col)
        buttons.append((first, len(fig.data), row, panels))
    menu = [
        {
            "label": f"trial {row['number']} · {fmt_size(row['params'], 'params')} params · "
            f"{row['accuracy']:.1%}",
            "method": "update",
            "args": [
                {"visible": [first <= i < last for i in range(len(fig.data))]},
                {"annotations": panel_titles(panels), "title.text": title(row)},
            ],
        }
        for first, last, row, panels in buttons
    ]
    extra: dict = {}
    if len(menu) > 1:
        extra["updatemenus"] = [
            {
                "buttons": menu,
                "direction": "down",
                "x": 1,
                "xanchor": "right",
                "y": 1.18,
                "yanchor": "bottom",
                "showactive": True,
                "active": 0,
            }
        ]
    if drawn:
        row, panels = drawn[0]
        extra["annotations"] = panel_titles(panels)
        heading = title(row)
    else:
        heading = f"Architecture — {study.name}"
        centre_note(fig, "no Pareto-front trial yet")
    return apply_layout(
        fig, heading, height=430, margin={"l": 20, "r": 20, "t": 120, "b": 20}, **extra
    )
