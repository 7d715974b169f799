"""The live view: a Dash app (Plotly's own app framework) that polls the study database every few
seconds and redraws the report's views when a trial was added, changed state or reported an
epoch; clicking a point of the front draws that student's architecture.

Polling is cheap (a fingerprint of the trials); the full load (fronts, hypervolume history,
fANOVA importances) runs once per change and is shared by every open page. Each page keeps the
fingerprint it shows, so any number of tabs stay current, and figures keep their zoom across
redraws (``uirevision``).
"""

from __future__ import annotations

import threading

from autostudent.dashboard._data import StudyData, StudySource
from autostudent.dashboard._figures import architecture, figures
from autostudent.dashboard._page import fact_pieces


class LiveStudies:
    """The latest load of the studies, redone only when their fingerprint changes."""

    def __init__(self, sources: list[StudySource]) -> None:
        self.sources = sources
        self._lock = threading.Lock()
        self._key: str | None = None
        self._studies: list[StudyData] = []
        self.loads = 0  # full loads so far (the tests check that polling does not reload)

    def current(self) -> tuple[str, list[StudyData]]:
        with self._lock:
            key = str(hash(tuple(source.fingerprint() for source in self.sources)))
            if key != self._key:
                self._studies = [source.load() for source in self.sources]
                self._key = key
                self.loads += 1
            return key, self._studies


def create_app(sources: list[StudySource], refresh_seconds: float = 5.0):
    from dash import ALL, Dash, Input, Output, State, dcc, html, no_update

    live = LiveStudies(sources)
    _, studies = live.current()
    app = Dash(__name__, title="autostudent — " + ", ".join(s.name for s in studies))
    app.layout = html.Div(
        style={
            "fontFamily": "system-ui, sans-serif",
            "maxWidth": "1280px",
            "margin": "0 auto",
            "padding": "0 24px 48px",
        },
        children=[
            html.H1("autostudent — live view", style={"fontSize": "22px", "marginBottom": "4px"}),
            html.Div(id="facts"),
            html.Div(id="updated", style={"color": "#6c757d", "fontSize": "12px"}),
            dcc.Store(id="shown", data=None),  # the fingerprint this page shows
            dcc.Interval(id="tick", interval=int(refresh_seconds * 1000)),
            html.Div(id="views"),
        ],
    )

    def facts(studies: list[StudyData]) -> list:
        return [
            html.Div(
                [
                    html.Span(
                        text,
                        style={
                            "marginRight": "16px",
                            "fontSize": "13px",
                            **({"color": "#b02a37"} if warn else {}),
                        },
                    )
                    for text, warn in fact_pieces(s)
                ],
                className="facts",
                **{"data-study": s.name},
            )
            for s in studies
        ]

    def views(studies: list[StudyData]) -> list:
        children, seen = [], set()
        for n, (view, study_name, fig) in enumerate(figures(studies)):
            if view.key not in seen:
                seen.add(view.key)
                children += [
                    html.H2(view.title, style={"fontSize": "17px", "margin": "24px 0 2px"}),
                    html.P(view.help, style={"color": "#6c757d", "fontSize": "13px"}),
                ]
            children.append(
                dcc.Graph(
                    id={"type": "view", "key": view.key, "study": study_name, "n": n},
                    figure=fig,
                    config={"displaylogo": False},
                )
            )
        return children

    @app.callback(
        Output("facts", "children"),
        Output("views", "children"),
        Output("shown", "data"),
        Output("updated", "children"),
        Input("tick", "n_intervals"),
        State("shown", "data"),
        # No tick while a refresh is in flight: Dash drops the answer of a callback that was
        # requested again before it came back, so ticks faster than a redraw (figures take
        # seconds on a loaded machine) would drop every answer and the page would never fill.
        running=[(Output("tick", "disabled"), True, False)],
    )
    def refresh(_tick, shown):
        key, studies = live.current()
        total = sum(len(s.trials) for s in studies)
        stamp = f"{total} trials · re-read from the database every {refresh_seconds:g} s"
        if key == shown:
            return no_update, no_update, no_update, stamp
        return facts(studies), views(studies), key, stamp

    @app.callback(
        Output({"type": "view", "key": "architecture", "study": ALL, "n": ALL}, "figure"),
        Input({"type": "view", "key": "pareto", "study": ALL, "n": ALL}, "clickData"),
        State({"type": "view", "key": "architecture", "study": ALL, "n": ALL}, "id"),
        prevent_initial_call=True,
    )
    def pick_architecture(clicks, ids):
        """A click on a student of the front (or any measured point) draws its architecture."""
        point = next((c["points"][0] for c in clicks if c and c.get("points")), {})
        number = point.get("customdata")
        if number is None:
            return [no_update] * len(ids)
        _, studies = live.current()
        by_name = {s.name: s for s in studies}
        return [
            architecture(by_name[i["study"]], int(number))
            if int(number) in set(by_name[i["study"]].trials["number"])
            else no_update
            for i in ids
        ]

    app.live_studies = live
    return app
