"""Searched students against hand-designed ones, both retrained with export's recipe: test
accuracy (mean ± sd over seeds) against params, every study overlaid."""

from __future__ import annotations

import plotly.graph_objects as go

from autostudent.dashboard._data import StudyData
from autostudent.dashboard._figures.style import STUDY_COLOURS, TEACHER, apply_layout, centre_note

FAMILY_SYMBOLS = ("diamond", "square", "triangle-up", "pentagon", "hexagon", "star-triangle-up")


def baselines(studies: list[StudyData]) -> go.Figure:
    """Each baseline family as a line of markers (filled: with KD, hollow: without), the front's
    retrained students as labelled points, error bars one sd over seeds, the teacher's test
    accuracy as a dotted line."""
    fig = go.Figure()
    families = sorted(
        {g["name"] for s in studies for g in s.final_groups if g["role"] == "baseline"}
    )
    symbol = {f: FAMILY_SYMBOLS[i % len(FAMILY_SYMBOLS)] for i, f in enumerate(families)}
    teacher_lines = []
    for s, study in enumerate(studies):
        colour = STUDY_COLOURS[s % len(STUDY_COLOURS)]
        prefix = f"{study.name}: " if len(studies) > 1 else ""
        recipes = sorted({(g["epochs"], _augment(g)) for g in study.final_groups})
        for family in families:
            for kd in (True, False):
                gs = sorted(
                    (
                        g
                        for g in study.final_groups
                        if g["role"] == "baseline" and g["name"] == family and g["kd"] == kd
                    ),
                    key=lambda g: (g["epochs"], g["params"]),
                )
                if gs:
                    fig.add_trace(
                        _trace(
                            gs,
                            f"{prefix}{family}{'' if kd else ' (no KD)'}",
                            "#555555",
                            symbol[family],
                            filled=kd,
                            lines=True,
                        )
                    )
        students = [g for g in study.final_groups if g["role"] == "searched"]
        for kd in (True, False):
            gs = sorted((g for g in students if g["kd"] == kd), key=lambda g: g["params"])
            if gs:
                name = f"{prefix}searched{'' if kd else ' (no KD)'}"
                fig.add_trace(_trace(gs, name, colour, "circle", filled=kd, lines=False))
        teacher = study.teacher.get("test_accuracy")
        if teacher and study.final_groups:
            teacher_lines.append(
                {
                    "type": "line",
                    "xref": "paper",
                    "x0": 0,
                    "x1": 1,
                    "y0": teacher,
                    "y1": teacher,
                    "line": {"color": TEACHER, "width": 1, "dash": "dot"},
                }
            )
            fig.add_annotation(
                x=1,
                xref="paper",
                xanchor="right",
                y=teacher,
                text=f"teacher {teacher:.2%}",
                showarrow=False,
                yshift=8,
                font={"size": 11},
            )
        if len(recipes) > 1:  # one line per family: say what it mixes
            shown = "; ".join(f"{e} epochs{'' if a == 'none' else f', augment {a}'}"
                              for e, a in recipes)  # fmt: skip
            fig.add_annotation(
                text=f"{prefix}runs of several recipes are all shown ({shown}; hover: each one's)",
                x=0,
                xref="paper",
                y=1.02,
                yref="paper",
                showarrow=False,
                xanchor="left",
            )
    if not fig.data:
        centre_note(
            fig,
            "no final-fidelity runs yet: <i>autostudent baselines --storage … --study …</i> "
            "trains hand-designed students and the front with export's recipe",
        )
    fig.update_xaxes(type="log", title_text="params (log scale)")
    fig.update_yaxes(title_text="test accuracy (export's recipe)", tickformat=".1%")
    return apply_layout(
        fig,
        "Searched vs hand-designed students: test accuracy, mean ± sd over seeds",
        height=480,
        shapes=teacher_lines,
        hovermode="closest",
        legend={"orientation": "h", "y": -0.2},
    )


def _trace(gs: list[dict], name: str, colour: str, symbol: str, *, filled: bool, lines: bool):
    hover = [
        f"<b>{g['name']}</b>{'' if g['kd'] else ' without KD'}<br>"
        f"test {g['test_accuracy_mean']:.2%} ± {g['test_accuracy_sd']:.2%} "
        f"({len(g['seeds'])} seeds, {g['epochs']} epochs"
        + ("" if _augment(g) == "none" else f", augment {_augment(g)}")
        + f")<br>{g['params']:,} params"
        + (
            f"<br>KD {g['kd_settings']['loss']} T {g['kd_settings']['temperature']:.3g} "
            f"α {g['kd_settings']['alpha']:.3g}"
            if g["kd_settings"]
            else ""
        )
        for g in gs
    ]
    return go.Scatter(
        x=[g["params"] for g in gs],
        y=[g["test_accuracy_mean"] for g in gs],
        error_y={"type": "data", "array": [g["test_accuracy_sd"] for g in gs], "width": 3},
        mode=("lines+markers" if lines else "markers+text"),
        text=None if lines else [f"#{g['trial']}" for g in gs],
        textposition="top left",
        name=name,
        hovertext=hover,
        hoverinfo="text",
        line={"color": colour, "width": 1, "dash": "solid" if filled else "dot"},
        marker={
            "size": 10,
            "color": colour if filled else "white",
            "symbol": symbol,
            "line": {"color": colour, "width": 1.5},
        },
    )


def _augment(g: dict) -> str:
    """The recipe's augmentation (``none`` for runs stored before recipes named it)."""
    return g["recipe"].get("augment", "none")
