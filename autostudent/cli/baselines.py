"""``autostudent baselines``: the hand-designed students a searched one must beat."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from autostudent.cli._options import device_option, teacher_option


def baselines(
    storage: str = typer.Option(..., "--storage", help="SQLAlchemy URL of the study database."),
    study: str = typer.Option(..., "--study", help="Study name."),
    families: str = typer.Option(
        "resnet,mobilenetv2",
        "--families",
        help="Hand-designed families: resnet (depth × width), resnet8, resnet14, resnet20, "
        "mobilenetv2 (width multiplier × depth), or your own as package.module:factory "
        "(docs/baselines.md).",
    ),
    sizes: str = typer.Option(
        "auto",
        "--sizes",
        help="Parameter counts to size each family to: auto (the front's) or N,N,…",
    ),
    seeds: int = typer.Option(3, "--seeds", min=1, help="Seeds 0..S-1 of every run."),
    epochs: int = typer.Option(5, "--epochs", min=1, help="Epochs of export's recipe."),
    augment: str = typer.Option(
        "none",
        "--augment",
        help="Export's --augment: none | cached | online | mixup (views is export's alone). "
        "Gives the families the recipe of an export --augment run, for its margin.",
    ),
    no_students: bool = typer.Option(
        False, "--no-students", help="Do not retrain the front's students (no margins then)."
    ),
    workers: int = typer.Option(1, "--workers", min=1, help="Runs in parallel (processes)."),
    threads: int = typer.Option(1, "--threads", min=1, help="Torch threads per run."),
    raw: Path | None = typer.Option(
        None, "--raw", help="Also write every run's record as JSON into this folder."
    ),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the plan; train nothing."),
    teacher: Path | None = teacher_option(),
    device: str | None = device_option("runs"),
    as_json: bool = typer.Option(False, "--json", help="Print the result as one JSON object."),
) -> None:
    """Train hand-designed students (each family sized to the front's students) and the front's
    students themselves with export's recipe, with the study's KD settings and without, over
    seeds; store every run in the study (a finished run is never run again) and print each front
    student's margin over the best baseline of at most its size."""
    from autostudent.api import load
    from autostudent.baselines import parse_sizes

    result = load(storage, study).baselines(
        families=families.split(","),
        sizes=parse_sizes(sizes),
        seeds=seeds,
        epochs=epochs,
        augment=augment,
        students=not no_students,
        workers=workers,
        threads=threads,
        raw_dir=raw,
        dry_run=dry_run,
        teacher=teacher,
        device=device,
        log=lambda line: typer.echo(line, err=as_json),
    )
    if as_json:
        typer.echo(json.dumps(result))
        return
    if dry_run:
        typer.echo(f"{result['planned']} runs planned, {result['to_run']} not stored yet")
        return
    for b in result["baselines"]:
        typer.echo(
            f"  baseline {b['family']:<12} {b['params']:>8,} params  "
            f"{'KD' if b['kd'] else 'no KD':<5}"
            f"  {100 * b['test_accuracy_mean']:.2f} ± {100 * b['test_accuracy_sd']:.2f} %"
            f"  (seeds {len(b['seeds'])})"
        )
    for m in result["margins"]:
        base = m["baseline"]
        versus = (
            "no baseline of at most its size"
            if base is None
            else f"{m['margin_pt']:+.2f} pt over {base['family']} ({base['params']:,} params, "
            f"{100 * base['mean']:.2f} %)"
        )
        typer.echo(
            f"  trial {m['trial']:>4} {m['params']:>8,} params  {100 * m['mean']:.2f} ± "
            f"{100 * m['sd']:.2f} %  {versus}"
        )
