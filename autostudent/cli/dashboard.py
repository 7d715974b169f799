"""``autostudent dashboard``: the study's views as one HTML file, or live while a search runs."""

from __future__ import annotations

from pathlib import Path

import typer

from autostudent.errors import UserError


def _pairs(storages: list[str], studies: list[str]) -> list[tuple[str, str]]:
    """One storage for every study, or one storage per study (studies from several files)."""
    if len(storages) == 1:
        return [(storages[0], name) for name in studies]
    if len(storages) != len(studies):
        raise UserError(
            f"--storage: give one, or one per --study ({len(storages)} storages, "
            f"{len(studies)} studies)"
        )
    return list(zip(storages, studies, strict=True))


def dashboard(
    storage: list[str] = typer.Option(
        ..., "--storage", help="SQLAlchemy URL of the study database (once, or once per --study)."
    ),
    study: list[str] = typer.Option(
        ..., "--study", help="Study name; repeat to overlay several studies on one front."
    ),
    out: Path | None = typer.Option(
        None, "--out", help="Write a self-contained HTML report (opens offline)."
    ),
    serve: bool = typer.Option(False, "--serve", help="Serve the live view (reloads from the DB)."),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to serve on (with --serve)."),
    port: int = typer.Option(8050, "--port", min=1, max=65535, help="Port (with --serve)."),
    refresh: float = typer.Option(
        5.0, "--refresh", min=0.5, help="Seconds between reloads of the live view."
    ),
    png: Path | None = typer.Option(
        None, "--png", help="With --out: also save a screenshot (needs Chromium and Playwright)."
    ),
) -> None:
    """Pareto front, hypervolume, learning curves, timeline, parameters, importances and the
    architecture of front students, from the study database alone."""
    from autostudent import api

    if (out is None) == (not serve):
        raise UserError("--out/--serve: give exactly one (a report file, or the live view)")
    if png is not None and out is None:
        raise UserError("--png: only with --out (a screenshot of the written report)")
    pairs = _pairs(storage, study)
    if out is not None:
        api.write_dashboard([api.load(url, name) for url, name in pairs], out, png=png)
        typer.echo(f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB; opens offline)")
        if png is not None:
            typer.echo(f"wrote {png}")
        return
    from autostudent.dashboard import StudySource
    from autostudent.dashboard import serve as serve_live

    # a bad URL or study name fails here, before the server starts
    sources = [StudySource(url, name) for url, name in pairs]
    typer.echo(f"serving the live view on http://{host}:{port}/ (Ctrl-C stops)", err=True)
    serve_live(sources, host=host, port=port, refresh_seconds=refresh)
