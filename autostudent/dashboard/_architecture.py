"""A student's architecture (its stored spec) drawn as graphs: pure functions, spec → traces.

A NAGO student is drawn at its three levels side by side: the top-level graph of cells coloured
by resolution stage, the middle graph of units inside its largest cell, and the bottom graph of
operations inside that cell's largest unit. A chain student is one row of layers per stage.
Every graph is oriented from lower to higher node index, so a layered layout (a node's column is
its longest path from a source) reads left to right without arrows.
"""

from __future__ import annotations

from collections.abc import Callable

import plotly.graph_objects as go

from autostudent.edges import predecessors
from autostudent.registry import Registry

STAGE_COLOURS = ("#4c78a8", "#f58518", "#54a24b", "#b279a2", "#e45756")
Panels = list[tuple[str, list[go.Scatter]]]  # one (title, traces) per panel, left to right
DRAWINGS: Registry[Callable[[dict], Panels]] = Registry("student kind drawing")


def layered_layout(n: int, edges: list[list[int]]) -> list[tuple[float, float]]:
    """(x, y) per node: x = longest path from a source, nodes of one column spread around 0."""
    preds = predecessors(n, edges)
    column = [0] * n
    for v in range(n):  # edges go from lower to higher index: one pass is topological
        column[v] = max((column[u] + 1 for u in preds[v]), default=0)
    rows: dict[int, list[int]] = {}
    for v in range(n):
        rows.setdefault(column[v], []).append(v)
    position = [(0.0, 0.0)] * n
    for x, members in rows.items():
        for i, v in enumerate(members):
            position[v] = (float(x), (len(members) - 1) / 2 - i)
    return position


def edge_path(
    start: tuple[float, float], end: tuple[float, float], k: int, samples: int = 12
) -> tuple[list[float], list[float]]:
    """A straight line between neighbouring columns; an arc (alternately above and below) for
    an edge that skips columns, so it does not run through the nodes in between."""
    (x0, y0), (x1, y1) = start, end
    if x1 - x0 <= 1:
        return [x0, x1], [y0, y1]
    bump = (0.3 + 0.15 * (x1 - x0 - 1)) * (1 if k % 2 == 0 else -1)
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2 + bump
    ts = [i / samples for i in range(samples + 1)]
    return (
        [(1 - t) ** 2 * x0 + 2 * (1 - t) * t * cx + t**2 * x1 for t in ts],
        [(1 - t) ** 2 * y0 + 2 * (1 - t) * t * cy + t**2 * y1 for t in ts],
    )


def graph_traces(
    n: int,
    edges: list[list[int]],
    labels: list[str],
    hovers: list[str],
    colours: list[str],
    *,
    source: str = "",
    sink: str = "",
) -> list[go.Scatter]:
    """Edges and nodes of one graph; optional input/output nodes wired to its sources/sinks."""
    position = layered_layout(n, edges)
    preds = predecessors(n, edges)
    has_successor = {u for u, _ in edges}
    xs, ys = [p[0] for p in position], [p[1] for p in position]
    segments = [(position[u], position[v]) for u, v in edges]
    extra_x, extra_y, extra_text = [], [], []
    if source:
        start = (-1.0, 0.0)
        segments += [(start, position[v]) for v in range(n) if not preds[v]]
        extra_x.append(start[0]), extra_y.append(start[1]), extra_text.append(source)
    if sink:
        end = (max(xs, default=0.0) + 1.0, 0.0)
        segments += [(position[v], end) for v in range(n) if v not in has_successor]
        extra_x.append(end[0]), extra_y.append(end[1]), extra_text.append(sink)
    line_x: list[float | None] = []
    line_y: list[float | None] = []
    for k, (start, end) in enumerate(segments):
        xs_, ys_ = edge_path(start, end, k)
        line_x += [*xs_, None]
        line_y += [*ys_, None]
    traces = [
        go.Scatter(
            x=line_x,
            y=line_y,
            mode="lines",
            hoverinfo="skip",
            showlegend=False,
            line={"color": "#b0b6bd", "width": 1.5},
        ),
        go.Scatter(
            x=xs,
            y=ys,
            mode="markers+text",
            text=labels,
            textposition="top center",
            hovertext=hovers,
            hoverinfo="text",
            showlegend=False,
            marker={"size": 18, "color": colours, "line": {"color": "white", "width": 1.5}},
        ),
    ]
    if extra_x:
        traces.append(
            go.Scatter(
                x=extra_x,
                y=extra_y,
                mode="markers+text",
                text=extra_text,
                textposition="bottom center",
                hoverinfo="text",
                hovertext=extra_text,
                showlegend=False,
                marker={"size": 12, "color": "#6c757d", "symbol": "square"},
            )
        )
    return traces


@DRAWINGS.register("nago")
def _nago(spec: dict) -> Panels:
    stage_of = {cell: i for i, stage in enumerate(spec["stages"]) for cell in stage["cells"]}
    channels = [stage["channels"] for stage in spec["stages"]]
    cells = spec["cells"]
    op = spec["op"]

    def ops(cell: dict) -> int:
        return sum(unit["nodes"] for unit in cell["units"])

    top = spec["top"]
    top_panel = graph_traces(
        top["nodes"],
        top["edges"],
        [f"c{c}" for c in range(top["nodes"])],
        [
            f"cell {c} · stage {stage_of[c]} ({channels[stage_of[c]]} ch)<br>"
            f"{cells[c]['nodes']} units, {ops(cells[c])} ops "
            f"(units: {', '.join(str(u['nodes']) for u in cells[c]['units'])} ops)"
            for c in range(top["nodes"])
        ],
        [STAGE_COLOURS[stage_of[c] % len(STAGE_COLOURS)] for c in range(top["nodes"])],
        source="stem",
        sink="head",
    )
    big = max(range(len(cells)), key=lambda c: (ops(cells[c]), -c))
    cell = cells[big]
    colour = STAGE_COLOURS[stage_of[big] % len(STAGE_COLOURS)]
    mid_panel = graph_traces(
        cell["nodes"],
        cell["edges"],
        [f"u{u} ({unit['nodes']})" for u, unit in enumerate(cell["units"])],
        [
            f"unit {u}: {unit['nodes']} ops, {len(unit['edges'])} edges"
            for u, unit in enumerate(cell["units"])
        ],
        [colour] * cell["nodes"],
        source="in",
        sink="mean",
    )
    unit_index = max(range(len(cell["units"])), key=lambda u: (cell["units"][u]["nodes"], -u))
    unit = cell["units"][unit_index]
    width = channels[stage_of[big]]
    bottom_panel = graph_traces(
        unit["nodes"],
        unit["edges"],
        [f"op {i}" for i in range(unit["nodes"])],
        [f"op {i}: ReLU → {op} → BN, {width} ch" for i in range(unit["nodes"])],
        [colour] * unit["nodes"],
        source="in",
        sink="mean",
    )
    stages = " · ".join(
        f"stage {i}: {len(s['cells'])} cells, {s['channels']} ch"
        for i, s in enumerate(spec["stages"])
    )
    return [
        (f"cells (top graph) — {stages}", top_panel),
        (f"units of cell {big} (middle graph)", mid_panel),
        (f"{op} ops of unit {unit_index} of cell {big} (bottom graph)", bottom_panel),
    ]


@DRAWINGS.register("chain")
def _chain(spec: dict) -> Panels:
    labels, hovers, colours = [], [], []
    for s, stage in enumerate(spec["stages"]):
        for d in range(stage["depth"]):
            labels.append(f"{stage['channels']}")
            stride = 2 if s > 0 and d == 0 else 1
            hovers.append(
                f"stage {s}, layer {d}: {spec['op']}, {stage['channels']} ch, stride {stride}"
            )
            colours.append(STAGE_COLOURS[s % len(STAGE_COLOURS)])
    n = len(labels)
    edges = [[i, i + 1] for i in range(n - 1)]
    traces = graph_traces(n, edges, labels, hovers, colours, source="stem", sink="head")
    return [(f"layers ({spec['op']}), coloured by stage", traces)]


def architecture_panels(spec: dict) -> Panels:
    return DRAWINGS.get(spec["kind"])(spec)
