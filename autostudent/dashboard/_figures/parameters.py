"""Parallel coordinates of one study's searched and KD parameters against accuracy."""

from __future__ import annotations

import math

import plotly.graph_objects as go

from autostudent.dashboard._data import KD_PARAMS, StudyData
from autostudent.dashboard._figures.style import apply_layout, centre_note


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
        centre_note(fig, "no complete trial yet")
    return apply_layout(
        fig,
        f"Parameters vs accuracy — {study.name}",
        height=420,
        margin={"l": 80, "r": 80, "t": 90, "b": 40},
    )
