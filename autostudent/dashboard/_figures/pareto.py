"""The Pareto front: accuracy against size, every study overlaid, one button per size axis."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from autostudent import objectives as objs
from autostudent.dashboard._data import StudyData
from autostudent.dashboard._figures.style import (
    FAILED,
    PRUNED,
    STUDY_COLOURS,
    TEACHER,
    apply_layout,
)
from autostudent.dashboard._figures.text import fmt_size, hover_text


def _log_axis_title(size: str) -> str:
    return f"{objs.objective(size).label} (log scale)"


def pareto(studies: list[StudyData]) -> go.Figure:
    """Validation accuracy against size on a log axis, switchable between params, FLOPs and
    latency: the front joined and highlighted, dominated trials faded, pruned trials hollow at
    their last (low-fidelity) accuracy, failed trials as crosses in a strip below (size known,
    accuracy not), the teacher as a star and a dotted line, caps as dashed lines."""
    fig = make_subplots(
        rows=2, cols=1, shared_xaxes=True, row_heights=[0.86, 0.14], vertical_spacing=0.03
    )
    axes = list(objs.SIZES)
    first = studies[0].size_objective if studies else "params"
    visible_for: dict[str, list[bool]] = {size: [] for size in axes}
    shapes_for: dict[str, list[dict]] = {size: [] for size in axes}

    def add(trace: go.Scatter, size: str, row: int = 1) -> None:
        fig.add_trace(trace, row=row, col=1)
        for other in axes:
            visible_for[other].append(other == size)

    for s, study in enumerate(studies):
        colour = STUDY_COLOURS[s % len(STUDY_COLOURS)]
        label = study.name if len(studies) > 1 else ""
        t = study.trials
        text = t.apply(hover_text, axis=1) if len(t) else pd.Series(dtype=str)
        for size in axes:
            shown = size == first
            has = t[size].notna()
            front = t[t[f"front_{size}"] & has].sort_values(size)
            dominated = t[(t["state"] == "COMPLETE") & ~t[f"front_{size}"] & has]
            pruned = t[(t["state"] == "PRUNED") & has]
            failed = t[(t["state"] == "FAIL") & has]
            prefix = f"{label}: " if label else ""
            traces = [
                (
                    front,
                    dict(
                        mode="lines+markers+text",
                        name=f"{prefix}Pareto front",
                        text=[f"#{n}" for n in front["number"]],
                        textposition="top left",
                        textfont={"size": 10, "color": colour},
                        line={"shape": "hv", "color": colour, "width": 2},
                        marker={
                            "size": 11,
                            "color": colour,
                            "line": {"color": "white", "width": 1.5},
                        },
                    ),
                ),
                (
                    dominated,
                    dict(
                        mode="markers",
                        name=f"{prefix}dominated",
                        marker={"size": 8, "color": colour, "opacity": 0.35},
                    ),
                ),
                (
                    pruned,
                    dict(
                        mode="markers",
                        name=f"{prefix}pruned (low fidelity)",
                        marker={
                            "size": 8,
                            "color": PRUNED,
                            "symbol": "circle-open",
                            "opacity": 0.8,
                            "line": {"width": 1.5},
                        },
                    ),
                ),
            ]
            for rows, style in traces:
                add(
                    go.Scatter(
                        x=rows[size],
                        y=rows["accuracy"],
                        hovertext=text[rows.index],
                        hoverinfo="text",
                        legendgroup=f"{s}-{style['name']}",
                        visible=shown,
                        customdata=rows["number"],
                        **style,
                    ),
                    size,
                )
            add(
                go.Scatter(
                    x=failed[size],
                    y=[0] * len(failed),
                    mode="markers",
                    name=f"{prefix}failed",
                    hovertext=text[failed.index],
                    hoverinfo="text",
                    marker={
                        "size": 9,
                        "color": FAILED,
                        "symbol": "x-thin",
                        "line": {"width": 2, "color": FAILED},
                    },
                    customdata=failed["number"],
                    visible=shown,
                ),
                size,
                row=2,
            )
            teacher_x = study.teacher.get(objs.objective(size).result_key)
            teacher_y = study.teacher.get("val_accuracy")
            if teacher_x and teacher_y:
                add(
                    go.Scatter(
                        x=[teacher_x],
                        y=[teacher_y],
                        mode="markers+text",
                        name=f"{prefix}teacher",
                        text=["teacher"],
                        textposition="middle left",
                        marker={"size": 16, "symbol": "star", "color": TEACHER},
                        hovertext=[
                            f"<b>teacher</b><br>val acc {teacher_y:.2%}<br>"
                            f"{fmt_size(teacher_x, size)} {size}"
                        ],
                        hoverinfo="text",
                        visible=shown,
                    ),
                    size,
                )
                shapes_for[size].append(
                    {
                        "type": "line",
                        "xref": "paper",
                        "x0": 0,
                        "x1": 1,
                        "yref": "y",
                        "y0": teacher_y,
                        "y1": teacher_y,
                        "line": {"color": TEACHER, "width": 1, "dash": "dot"},
                    }
                )
            cap = study.caps.get(objs.objective(size).cap_key or "")
            if cap:
                for yref in ("y domain", "y2 domain"):
                    shapes_for[size].append(
                        {
                            "type": "line",
                            "x0": cap,
                            "x1": cap,
                            "xref": "x",
                            "yref": yref,
                            "y0": 0,
                            "y1": 1,
                            "line": {"color": FAILED, "width": 1, "dash": "dash"},
                        }
                    )
    buttons = [
        {
            "label": objs.objective(size).label,
            "method": "update",
            "args": [
                {"visible": visible_for[size]},
                {"xaxis2.title.text": _log_axis_title(size), "shapes": shapes_for[size]},
            ],
        }
        for size in axes
    ]
    fig.update_xaxes(type="log", row=1, col=1)
    fig.update_xaxes(type="log", title_text=_log_axis_title(first), row=2, col=1)
    fig.update_yaxes(
        title_text="validation accuracy",
        tickformat=".0%",
        range=_accuracy_range(studies),
        row=1,
        col=1,
    )
    fig.update_yaxes(showticklabels=False, range=[-1, 1], title_text="failed", row=2, col=1)
    return apply_layout(
        fig,
        "Pareto front: validation accuracy vs size",
        height=560,
        shapes=shapes_for[first],
        hovermode="closest",
        legend={"orientation": "h", "y": -0.18},
        updatemenus=[
            {
                "type": "buttons",
                "direction": "right",
                "x": 1.0,
                "xanchor": "right",
                "y": 1.09,
                "yanchor": "bottom",
                "buttons": buttons,
                "active": axes.index(first),
                "showactive": True,
            }
        ],
    )


def _accuracy_range(studies: list[StudyData]) -> list[float] | None:
    """Open on what matters: from a little below the worst complete trial to above the
    teacher. Low-fidelity pruned points further down are a double-click (autoscale) away."""
    complete = [s.trials.loc[s.trials["state"] == "COMPLETE", "accuracy"] for s in studies]
    lows = [c.min() for c in complete if len(c)]
    if not lows:
        return None
    highs = [c.max() for c in complete if len(c)]
    highs += [s.teacher["val_accuracy"] for s in studies if s.teacher.get("val_accuracy")]
    low, high = min(lows), max(highs)
    pad = max(0.02, 0.1 * (high - low))
    return [max(0.0, low - pad), min(1.0, high + pad / 2)]
