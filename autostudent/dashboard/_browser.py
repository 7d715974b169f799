"""A headless Chromium that looks at a report or the live view as a person would: it renders
the page, waits for every figure, and takes a screenshot (``dashboard --png``, the tests).

Playwright drives the system's Chromium (Debian's ``chromium``): its own browser download is not
needed. ``$AUTOSTUDENT_CHROMIUM`` names another executable.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from autostudent.errors import UserError

# Flags a sandboxed, offline machine needs: no sandbox as root, no background network calls.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# Plotly marks a drawn figure with the class "js-plotly-plot"; `_fullData` holds its traces as
# drawn (typed arrays decoded, hidden traces empty): count the points a person can see.
FIGURES_JS = """() => Array.from(document.querySelectorAll('.js-plotly-plot')).map(el => {
    const traces = (el._fullData || []).filter(t => t.visible === true);
    const size = t => t.type === 'table' ? ((t.cells.values[0] || []).length)
        : t.type === 'parcoords' ? ((t.dimensions[0] || {values: []}).values.length)
        : (t.x || []).filter(v => v !== null).length;
    const box = el.getBoundingClientRect();
    return {
        id: el.id,
        view: (el.closest('[data-view]') || {dataset: {}}).dataset.view || '',
        traces: traces.length,
        points: traces.reduce((n, t) => n + size(t), 0),
        title: (el.layout && el.layout.title && el.layout.title.text) || '',
        width: box.width,
        height: box.height,
    };
})"""


def chromium_path() -> str:
    candidates = [os.environ.get("AUTOSTUDENT_CHROMIUM"), "chromium", "chromium-browser"]
    for name in candidates:
        found = name and shutil.which(name)
        if found:
            return found
    raise UserError("--png: no Chromium found (apt install chromium, or set $AUTOSTUDENT_CHROMIUM)")


@contextmanager
def browser_page(width: int = 1400, height: int = 900) -> Iterator[Any]:
    """A Playwright page in headless Chromium."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        raise UserError(
            "--png: needs Playwright (pip install 'autostudent[dev]' or pip install playwright)"
        ) from None
    executable = chromium_path()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": width, "height": height})
            yield page
        finally:
            browser.close()


def wait_for_figures(page: Any, expected: int, timeout_ms: int = 120_000) -> list[dict]:
    """Wait until ``expected`` Plotly figures are drawn; their trace and point counts.

    The live view computes every figure server-side: 29 s on a loaded 2-core machine.
    """
    page.wait_for_function(
        f"() => document.querySelectorAll('.js-plotly-plot .main-svg').length >= {expected}",
        timeout=timeout_ms,
    )
    return page.evaluate(FIGURES_JS)


def screenshot(url: str, out: Path, expected_figures: int, *, full_page: bool = True) -> Path:
    """Open ``url`` (a file:// report or the live view), wait for its figures, save a PNG."""
    with browser_page() as page:
        page.goto(url)
        wait_for_figures(page, expected_figures)
        page.wait_for_timeout(500)  # let Plotly finish its transitions
        out.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(out), full_page=full_page)
    return out
