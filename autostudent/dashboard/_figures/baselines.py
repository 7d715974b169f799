"""Searched students against hand-designed ones, both retrained with export's recipe: test
accuracy (mean ± sd over seeds) against params, every study overlaid."""

from __future__ import annotations

import plotly.graph_objects as go

from autostudent.dashboard._data import StudyData
from autostudent.dashboard._figures.style import STUDY_COLOURS, TEACHER, apply_layout, centre_note

FAMILY_SYMBOLS = ("diamond", "square", "triangle-up", "pentagon", "hexagon", "star-triangle-up")
RECIPE_GREYS = ("#555555", "#a0a0a0", "#222222", "#7a7a7a")  # one per recipe a study stores


def baselines(studies: list[StudyData]) -> go.Figure:
    """Each baseline family as a line of markers per recipe (filled: with KD, hollow: without;
    a grey per recipe, named in the legend when a study stores several), the front's retrained
    students as labelled points, error bars one sd over seeds, the teacher's test accuracy as a
    dotted line."""
    fig = go.Figure()
    families = sorted(
        {g["name"] for s in studies for g in s.final_groups if g["role"] == "baseline"}
    )
    symbol = {f: FAMILY_SYMBOLS[i % len(FAMILY_SYMBOLS)] for i, f in enumerate(families)}
    teacher_lines = []
    for s, study in enumerate(studies):
        colour = STUDY_COLOURS[s % len(STUDY_COLOURS)]
        prefix = f"{study.name}: " if len(studies) > 1 else ""
        recipes = sorted({_recipe(g) for g in study.final_groups})
        grey = {r: RECIPE_GREYS[i % len(RECIPE_GREYS)] for i, r in enumerate(recipes)}
        runs: dict[tuple, list[dict]] = {}  # one trace per (role, family, recipe, KD or not)
        for g in study.final_groups:
            runs.setdefault((g["role"], g["name"] if g["role"] == "baseline" else "searched",
                             _recipe(g), not g["kd"]), []).append(g)  # fmt: skip
        for (role, name, recipe, no_kd), gs in sorted(runs.items()):
            gs.sort(key=lambda g: g["params"])
            named = f" ({_recipe_text(recipe)})" if len(recipes) > 1 else ""
            label = f"{prefix}{name}{named}{' (no KD)' if no_kd else ''}"
            if role == "baseline":
                trace = _trace(gs, label, grey[recipe], symbol[name], filled=not no_kd, lines=True)
            else:
                trace = _trace(gs, label, colour, "circle", filled=not no_kd, lines=False)
            fig.add_trace(trace)
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
        f"({len(g['seeds'])} seeds, {_recipe_text(_recipe(g))})<br>{g['params']:,} params"
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


def _recipe(g: dict) -> tuple[int, str]:
    """A run's recipe as far as it tells runs apart: epochs and augmentation (``none`` for runs
    stored before recipes named it)."""
    return g["epochs"], g["recipe"].get("augment", "none")


def _recipe_text(recipe: tuple[int, str]) -> str:
    epochs, augment = recipe
    return f"{epochs} epochs" + ("" if augment == "none" else f", augment {augment}")
