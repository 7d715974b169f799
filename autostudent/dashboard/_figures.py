"""The dashboard's views: pure functions from loaded studies to Plotly figures.

The static report and the live app render the same figures. ``VIEWS`` lists them in page order;
a view either overlays every study (the Pareto front, the hypervolume) or draws one study.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd
import plotly.graph_objects as go
from plotly.colors import qualitative
from plotly.subplots import make_subplots

from autostudent import objectives as objs
from autostudent.dashboard._architecture import architecture_panels
from autostudent.dashboard._data import KD_PARAMS, StudyData

STUDY_COLOURS = qualitative.Plotly
PRUNED = "#9aa0a6"
FAILED = "#d62728"
TEACHER = "#111111"
STATE_WORDS = {"COMPLETE": "complete", "PRUNED": "pruned", "FAIL": "failed", "RUNNING": "running"}
STATE_COLOURS = {"COMPLETE": "#1f77b4", "PRUNED": PRUNED, "FAIL": FAILED, "RUNNING": "#2ca02c"}
BASE_LAYOUT = {
    "template": "plotly_white",
    "margin": {"l": 60, "r": 20, "t": 50, "b": 50},
    "font": {"size": 12},
    "uirevision": "keep",  # the live view keeps zoom and selections across reloads
}


@dataclass(frozen=True)
class View:
    key: str
    title: str
    help: str  # one sentence under the title: what the view shows
    draw: Callable[..., go.Figure]
    overlay: bool  # True: one figure for all studies; False: one per study


def _fmt_size(value: float | None, name: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "?"
    if name == "latency_ms":
        return f"{value:.2f} ms"
    for unit, scale in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if value >= scale:
            return f"{value / scale:.3g}{unit}"
    return f"{value:,.0f}"


def hover_text(row: pd.Series) -> str:
    """Trial number, state and fidelity, architecture in words, KD settings, metrics."""
    state = row["state"].lower()
    if row["state"] == "PRUNED":
        state = f"pruned at epoch {row['epochs']}/{row['max_epochs']}"
    elif row["state"] == "FAIL":
        state = f"failed: {row['failure'] or 'no reason stored'}"
    lines = [f"<b>trial {row['number']}</b> · {state}"]
    if row["arch"]:
        lines.append(row["arch"])
    if row["kd_loss"] is not None:
        lines.append(kd_text(row))
    metrics = []
    if pd.notna(row["accuracy"]) and row["state"] != "FAIL":
        metrics.append(f"val acc {row['accuracy']:.2%}")
    metrics += [
        f"{_fmt_size(row['params'], 'params')} params",
        f"{_fmt_size(row['flops'], 'flops')} FLOPs",
        _fmt_size(row["latency_ms"], "latency_ms"),
    ]
    lines.append(" · ".join(metrics))
    if pd.notna(row["epochs"]) and row["state"] == "COMPLETE":
        lines.append(f"{row['epochs']} epochs")
    if row["fallback"]:
        lines.append(f"sampler fallback: {row['fallback']}")
    return "<br>".join(lines)


def kd_text(row: pd.Series) -> str:
    if row["kd_loss"] is None:
        return ""
    return f"KD {row['kd_loss']} · T {row['kd_temperature']:.2f} · α {row['kd_alpha']:.2f}"


def _layout(fig: go.Figure, title: str, **extra) -> go.Figure:
    fig.update_layout(**{**BASE_LAYOUT, **extra}, title={"text": title, "x": 0.01})
    return fig


def _note(fig: go.Figure, text: str) -> None:
    """A message in the middle of an empty figure, axes hidden."""
    fig.add_annotation(text=text, showarrow=False, x=0.5, y=0.5, xref="paper", yref="paper")
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)


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
                            f"{_fmt_size(teacher_x, size)} {size}"
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
    return _layout(
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


def hypervolume(studies: list[StudyData]) -> go.Figure:
    """The hypervolume of each study's front after every finished trial."""
    fig = go.Figure()
    for s, study in enumerate(studies):
        h = study.hv_history
        fig.add_trace(
            go.Scatter(
                x=h["finished"],
                y=h["hypervolume"],
                mode="lines+markers",
                name=study.name,
                line={"shape": "hv", "color": STUDY_COLOURS[s % len(STUDY_COLOURS)]},
                marker={"size": 5},
                customdata=h["trial"],
                hovertemplate="after %{x} finished trials (trial %{customdata}): "
                "HV %{y:.4f}<extra></extra>",
            )
        )
    refs = ", ".join(f"{k} {_fmt_size(v, k)}" for k, v in (studies[0].hv_reference or {}).items())
    return _layout(
        fig,
        "Hypervolume over finished trials",
        height=360,
        xaxis_title="finished trials (COMPLETE + PRUNED), in the order they finished",
        yaxis_title=f"hypervolume (reference: {refs or 'none'})",
        xaxis_tickformat="d",
        showlegend=len(studies) > 1,
    )


def curves(study: StudyData) -> go.Figure:
    """Validation accuracy per epoch of every trial, by outcome; the front in bold."""
    fig = go.Figure()
    t = study.trials
    front = t[f"front_{study.size_objective}"]
    shown_legend: set[str] = set()
    for idx, row in t.iterrows():
        if not row["curve"]:
            continue
        kind = "Pareto front" if front[idx] else row["state"].lower()
        colour = STUDY_COLOURS[0] if front[idx] else STATE_COLOURS.get(row["state"], PRUNED)
        fig.add_trace(
            go.Scatter(
                x=list(range(1, len(row["curve"]) + 1)),
                y=row["curve"],
                mode="lines+markers",
                name=kind,
                legendgroup=kind,
                showlegend=kind not in shown_legend,
                line={"color": colour, "width": 3 if front[idx] else 1},
                opacity=1.0 if front[idx] else 0.45,
                marker={"size": 5},
                hovertext=hover_text(row),
                hoverinfo="text",
            )
        )
        shown_legend.add(kind)
    teacher = study.teacher.get("val_accuracy")
    if teacher:
        fig.add_hline(
            y=teacher,
            line={"dash": "dot", "color": TEACHER, "width": 1},
            annotation_text="teacher",
            annotation_position="top left",
        )
    return _layout(
        fig,
        f"Learning curves — {study.name}",
        height=380,
        xaxis={"title": "epoch", "dtick": 1},
        yaxis={"title": "validation accuracy", "tickformat": ".0%"},
    )


def timeline(study: StudyData) -> go.Figure:
    """Each trial as a bar from proposal to result, one lane per Ray worker process."""
    t = study.trials.dropna(subset=["start"]).copy()
    t["end"] = t["complete"].fillna(pd.Timestamp.now())
    fig = go.Figure()
    lanes = sorted(t["worker"].unique(), key=lambda w: (w == "driver", w))
    for state, colour in STATE_COLOURS.items():
        rows = t[t["state"] == state]
        if rows.empty:
            continue
        duration = (rows["end"] - rows["start"]).dt.total_seconds() * 1000
        fig.add_trace(
            go.Bar(
                base=rows["start"],
                x=duration.clip(lower=300),
                y=rows["worker"],
                orientation="h",
                name=STATE_WORDS[state],
                marker={"color": colour},
                hovertext=rows.apply(hover_text, axis=1),
                hoverinfo="text",
                customdata=rows["number"],
                text=rows["number"].astype(str),
                textposition="inside",
                insidetextanchor="middle",
            )
        )
    return _layout(
        fig,
        f"Trials per worker over time — {study.name}",
        height=140 + 40 * max(len(lanes), 1),
        barmode="overlay",
        xaxis={"type": "date", "title": "time"},
        yaxis={"title": "worker (Ray node:pid)", "categoryorder": "array", "categoryarray": lanes},
    )


def parameters(study: StudyData) -> go.Figure:
    """Parallel coordinates: generator and KD parameters of the COMPLETE trials, coloured by
    validation accuracy (pruned trials' accuracies are low-fidelity and stay out)."""
    t = study.trials[study.trials["state"] == "COMPLETE"]
    dims = []
    names = list(dict.fromkeys(k for p in t["point"] for k in p)) + [
        k for k in KD_PARAMS if t[k].notna().any()
    ]
    for name in names:
        values = t[name] if name in KD_PARAMS else t["point"].map(lambda p, n=name: p.get(n))
        if values.isna().all():
            continue
        if values.map(lambda v: isinstance(v, str)).any():
            choices = sorted(values.dropna().unique())
            codes = values.map({c: i for i, c in enumerate(choices)})
            dims.append(
                {
                    "label": name,
                    "values": codes,
                    "tickvals": list(range(len(choices))),
                    "ticktext": choices,
                }
            )
        else:
            dims.append({"label": name, "values": values.astype(float)})
    size = study.size_objective
    if len(t):
        dims.append({"label": f"log10 {size}", "values": t[size].astype(float).map(math.log10)})
        dims.append({"label": "val accuracy", "values": t["accuracy"].astype(float)})
    fig = go.Figure(
        go.Parcoords(
            dimensions=dims,
            line={
                "color": t["accuracy"].astype(float),
                "colorscale": "Viridis",
                "showscale": True,
                "colorbar": {"title": "val acc"},
            },
        )
    )
    if not len(t):
        _note(fig, "no complete trial yet")
    return _layout(
        fig,
        f"Parameters vs accuracy — {study.name}",
        height=420,
        margin={"l": 80, "r": 80, "t": 90, "b": 40},
    )


def importances(study: StudyData) -> go.Figure:
    """fANOVA importance of each parameter for each objective (Optuna's importance evaluator),
    one panel per objective, most important at the top."""
    names = list(study.importances) or [""]
    fig = make_subplots(
        rows=1, cols=len(names), subplot_titles=[f"for {n}" for n in names], horizontal_spacing=0.18
    )
    for i, (objective, values) in enumerate(study.importances.items(), start=1):
        ordered = sorted(values.items(), key=lambda kv: kv[1])
        fig.add_trace(
            go.Bar(
                x=[v for _, v in ordered],
                y=[k for k, _ in ordered],
                orientation="h",
                name=objective,
                showlegend=False,
                marker={"color": STUDY_COLOURS[(i - 1) % len(STUDY_COLOURS)]},
                hovertemplate="%{y}: %{x:.3f}<extra>" + objective + "</extra>",
            ),
            row=1,
            col=i,
        )
        fig.update_xaxes(title_text="share of variance", row=1, col=i)
    if study.importance_note:
        _note(fig, study.importance_note)
    n = max((len(v) for v in study.importances.values()), default=3)
    return _layout(
        fig,
        f"Parameter importances (fANOVA, complete trials) — {study.name}",
        height=160 + 20 * n,
        margin={"l": 60, "r": 20, "t": 80, "b": 50},
    )


def front_trials(study: StudyData) -> pd.DataFrame:
    size = study.size_objective
    t = study.trials
    return t[t[f"front_{size}"]].sort_values(size)


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
            f"<br><sup>{row['arch']} · {_fmt_size(row['params'], 'params')} params · "
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
            "label": f"trial {row['number']} · {_fmt_size(row['params'], 'params')} params · "
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
        _note(fig, "no Pareto-front trial yet")
    return _layout(fig, heading, height=430, margin={"l": 20, "r": 20, "t": 120, "b": 20}, **extra)


def front_table(study: StudyData) -> go.Figure:
    """The students worth taking: the front, smallest first, against the teacher."""
    size = study.size_objective
    front = front_trials(study)
    teacher_acc = study.teacher.get("val_accuracy")
    teacher_size = study.teacher.get(objs.objective(size).result_key)
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
        "FLOPs": front["flops"].map(lambda v: _fmt_size(v, "flops")),
        "latency": front["latency_ms"].map(lambda v: _fmt_size(v, "latency_ms")),
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
            columnwidth=[40, 60, 70, 70, 80, 60, 60, 140, 260, 330],
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
        "export retrains in full and measures on the test split"
    )
    return _layout(
        fig,
        f"Pareto-front students — {study.name}<br><sup>{note}</sup>",
        height=150 + 48 * max(len(front), 1),
        margin={"l": 10, "r": 10, "t": 70, "b": 10},
    )


def _epochs(study: StudyData) -> str:
    values = study.trials["max_epochs"].dropna()
    return str(int(values.max())) if len(values) else "?"


VIEWS: tuple[View, ...] = (
    View(
        "pareto",
        "Pareto front",
        "Accuracy against size on a log axis (buttons: params, "
        "FLOPs, latency); the front highlighted, dominated faded, pruned hollow, failed as "
        "crosses below, the teacher as a star.",
        pareto,
        overlay=True,
    ),
    View(
        "front",
        "Students on the front",
        "The non-dominated students, smallest first, "
        "against the teacher, with the command that exports each.",
        front_table,
        overlay=False,
    ),
    View(
        "hypervolume",
        "Hypervolume",
        "How the front improved as trials finished.",
        hypervolume,
        overlay=True,
    ),
    View(
        "curves",
        "Learning curves",
        "Validation accuracy per epoch; pruned trials stop early.",
        curves,
        overlay=False,
    ),
    View(
        "architecture",
        "Architecture",
        "A front student's top, middle and bottom graphs (pick the trial in the menu).",
        architecture,
        overlay=False,
    ),
    View(
        "parameters",
        "Parameters",
        "Generator and KD parameters of complete trials against "
        "accuracy (drag along an axis to filter).",
        parameters,
        overlay=False,
    ),
    View(
        "importances",
        "Importances",
        "Which parameters drive accuracy and size (fANOVA).",
        importances,
        overlay=False,
    ),
    View(
        "timeline",
        "Timeline",
        "Trials on each Ray worker over time: idle gaps are overhead.",
        timeline,
        overlay=False,
    ),
)


def figures(studies: list[StudyData]) -> list[tuple[View, str, go.Figure]]:
    """Every view's figures in page order: (view, study name or '' for overlays, figure)."""
    out = []
    for view in VIEWS:
        if view.overlay:
            out.append((view, "", view.draw(studies)))
        else:
            out.extend((view, study.name, view.draw(study)) for study in studies)
    return out
