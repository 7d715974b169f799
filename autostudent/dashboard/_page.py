"""The static report: one self-contained HTML file (plotly.js inlined once, opens offline)."""

from __future__ import annotations

import html
from datetime import datetime, timezone

import plotly.graph_objects as go
from plotly.offline import get_plotlyjs

from autostudent.dashboard._data import StudyData
from autostudent.dashboard._figures import STATE_WORDS, figures

STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 0 auto;
       max-width: 1280px; padding: 0 24px 48px; color: #212529; }
header { position: sticky; top: 0; background: white; z-index: 10; padding: 12px 0 6px;
         border-bottom: 1px solid #dee2e6; }
h1 { font-size: 22px; margin: 0 0 4px; }
h2 { font-size: 17px; margin: 28px 0 2px; }
p.help { color: #6c757d; margin: 0 0 6px; font-size: 13px; }
nav a { margin-right: 14px; font-size: 13px; color: #1f77b4; text-decoration: none; }
.facts { font-size: 13px; margin: 2px 0 6px; }
.facts span { margin-right: 16px; white-space: nowrap; }
.stamp { color: #6c757d; font-size: 12px; }
.warn { color: #b02a37; font-weight: 600; }
.figure { border: 1px solid #f1f3f5; border-radius: 6px; margin: 6px 0; }
"""


def fact_pieces(study: StudyData) -> list[tuple[str, bool]]:
    """Facts of one study as (text, is a warning): states, front, hypervolume, fallbacks,
    driver, recovered trials, storage retries, teacher, validation size, storage. The report's
    header and the live view's both show them."""
    s = study.summary
    st = s["states"]
    pieces = [
        (study.name, False),
        *(
            (f"{st.get(k, 0)} {word}", k == "FAIL" and st.get(k, 0) > 0)
            for k, word in STATE_WORDS.items()
        ),
        (f"front {len(s['pareto'])}", False),
        (f"hypervolume {s['hypervolume']:.4f}", False),
        (f"{s.get('fallbacks', 0)} sampler fallbacks", bool(s.get("fallbacks", 0))),
    ]
    relaxed = sum(s.get("relaxed", {}).values())
    if relaxed:  # a coverage rule dropped: never silent
        pieces.append((f"{relaxed} proposals relaxed a coverage rule", True))
    driver = s.get("driver")
    if driver:
        state = "running" if driver["alive"] else "stopped" if driver["released"] else "dead"
        pieces.append((f"driver {state} on {driver['host']} (pid {driver['pid']})", False))
    pieces.append((f"{s.get('recoveries', 0)} recovered", bool(s.get("recoveries", 0))))
    if s.get("storage_retries"):
        pieces.append((f"{s['storage_retries']} storage retries", True))
    teacher = study.teacher
    if teacher.get("params"):
        test = teacher.get("test_accuracy")
        pieces.append(
            (
                f"teacher {teacher['params']:,} params, {(teacher.get('val_accuracy') or 0):.2%} "
                f"val" + (f", {test:.2%} test" if test else ""),
                False,
            )
        )
    if s.get("val_images"):  # the finest step between two students' accuracies
        n = s["val_images"]
        pieces.append((f"val on {n:,} images (1 image = {100 / n:.2f} pt)", False))
    pieces.append((study.storage, False))
    return pieces


def study_facts(study: StudyData) -> str:
    spans = "".join(
        f"<span class='{'warn' if warn else ''}'>{html.escape(text)}</span>"
        for text, warn in fact_pieces(study)
    )
    return f"<div class='facts' data-study='{html.escape(study.name)}'>{spans}</div>"


def render_report(studies: list[StudyData]) -> str:
    """The whole report as one HTML document."""
    sections, nav, seen = [], [], set()
    for n, (view, study_name, fig) in enumerate(figures(studies)):
        if view.key not in seen:
            seen.add(view.key)
            nav.append(f"<a href='#{view.key}'>{html.escape(view.title)}</a>")
            sections.append(
                f"<h2 id='{view.key}'>{html.escape(view.title)}</h2>"
                f"<p class='help'>{html.escape(view.help)}</p>"
            )
        sections.append(_figure_div(fig, f"view-{view.key}-{n}", view.key, study_name))
    names = ", ".join(s.name for s in studies)
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>autostudent — {html.escape(names)}</title>
<style>{STYLE}</style>
<script type="text/javascript">{get_plotlyjs()}</script>
</head><body>
<header><h1>autostudent report — {html.escape(names)}</h1>
{"".join(study_facts(s) for s in studies)}
<nav>{"".join(nav)}<span class='stamp'>generated {stamp} from the study database</span></nav>
</header>
{"".join(sections)}
</body></html>
"""


def _figure_div(fig: go.Figure, div_id: str, view: str, study: str) -> str:
    body = fig.to_html(
        full_html=False,
        include_plotlyjs=False,
        div_id=div_id,
        config={"displaylogo": False, "responsive": True},
    )
    return f"<div class='figure' data-view='{view}' data-study='{html.escape(study)}'>{body}</div>"
