"""``autostudent bench throughput|sampler|scaling``: targets measured side by side."""

from __future__ import annotations

import json
from pathlib import Path

import typer

app = typer.Typer(
    help="Benchmarks that print ratios measured side by side in one run.", no_args_is_help=True
)


def _print(result: dict, as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps(result))
        return
    for key, value in result.items():
        typer.echo(
            f"{key:>24}  {value:,.4g}" if isinstance(value, float) else f"{key:>24}  {value}"
        )


@app.command()
def throughput(
    teacher: Path | None = typer.Option(
        None, "--teacher", help="Teacher file (default: the demo teacher's architecture)."
    ),
    images: int = typer.Option(6400, "--images", min=512, help="Training images per round."),
    batch_size: int = typer.Option(256, "--batch-size", min=2),
    rounds: int = typer.Option(3, "--rounds", min=1),
    threads: int = typer.Option(2, "--threads", min=1),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """KD-trial throughput ÷ student-only throughput, beside the naive teacher-in-the-loop KD."""
    from autostudent.bench.throughput import bench_throughput

    _print(bench_throughput(teacher, images, batch_size, rounds, threads), as_json)


@app.command()
def sampler(
    trials: int = typer.Option(100, "--trials", min=2, help="Finished trials in the history."),
    seed: int = typer.Option(0, "--seed"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Seconds per proposal: ours (BoTorch) vs Optuna's GPSampler on the same history.
    Exits 1 if any timed proposal of ours fell back to Sobol."""
    from autostudent.bench.sampler import bench_sampler

    result = bench_sampler(trials=trials, seed=seed)
    _print(result, as_json)
    if result["fallbacks"]:
        typer.echo(
            f"error: {result['fallbacks']} timed proposals of ours fell back to Sobol "
            f"({result['fallback_reasons'][0]}); their timings are not the BO's",
            err=True,
        )
        raise typer.Exit(1)


@app.command()
def scaling(
    config: Path | None = typer.Option(
        None, "--config", help="Study YAML or built-in study (default: smoke)."
    ),
    trials: int = typer.Option(12, "--trials", min=2, help="Trials per run."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """The same small study with 1 and with 2 workers: speed-up in trials per hour."""
    from autostudent.bench.scaling import DEFAULT_CONFIG, bench_scaling

    _print(bench_scaling(config or DEFAULT_CONFIG, trials), as_json)
