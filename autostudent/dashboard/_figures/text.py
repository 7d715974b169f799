"""The words on the figures: sizes with units, a trial's hover text, its KD settings."""

from __future__ import annotations

import math

import pandas as pd


def fmt_size(value: float | None, name: str) -> str:
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
        f"{fmt_size(row['params'], 'params')} params",
        f"{fmt_size(row['flops'], 'flops')} FLOPs",
        fmt_size(row["latency_ms"], "latency_ms"),
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
