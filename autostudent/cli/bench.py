"""``autostudent bench throughput|sampler|scaling|hypervolume``: targets measured side by side."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from autostudent.cli._options import device_option, teacher_option

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
    seed: int = typer.Option(0, "--seed", min=0),
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
    """The same small study with 1 and with 2 workers (warm-up, then 1, 2, 2, 1): speed-up in
    trials per hour, every run's raw numbers."""
    from autostudent.bench.scaling import DEFAULT_CONFIG, bench_scaling

    _print(bench_scaling(config or DEFAULT_CONFIG, trials), as_json)


@app.command()
def hypervolume(
    out: Path = typer.Option(
        Path("bench-hypervolume"), "--out", help="Folder for every run's raw numbers (resumable)."
    ),
    seeds: str = typer.Option("0,1,2,3,4", "--seeds", help="Comma-separated sampler seeds."),
    trials: int = typer.Option(40, "--trials", min=1, help="Finished trials per run."),
    samplers: str = typer.Option(
        "botorch,tpe,nsga2,gp,random", "--samplers", help="Comma-separated sampler names."
    ),
    teacher: Path | None = typer.Option(
        None, "--teacher", help="Teacher file (default: the task's own)."
    ),
    task: str = typer.Option(
        "fashion-mnist-2k", "--task", help="fashion-mnist-2k | fashion-mnist-2k-flops | digits"
    ),
    coverage: list[str] = typer.Option(
        [],
        "--coverage",
        help="KEY=VALUE of ours' coverage rules (search.coverage in a study file), repeatable: "
        "e.g. --coverage gap_share=0 --coverage retry_gaps=false.",
    ),
    prune_gap_proposals: bool | None = typer.Option(
        None,
        "--prune-gap-proposals/--keep-gap-proposals",
        help="Whether MO-ASHA may stop ours' gap proposals (search.prune_gap_proposals; "
        "default: the product's, keep).",
    ),
    rung_average: str | None = typer.Option(
        None,
        "--rung-average",
        help="Decay of the weight average every sampler's rungs read (budget.rung_average), "
        "auto (1/16 of an epoch) or none: the model itself (default: the product's).",
    ),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """One real KD search task with ours and Optuna's samplers: hypervolume per trial and per
    wall-clock second, median and quartiles over seeds."""
    from autostudent.bench.hypervolume import TASKS, bench_hypervolume
    from autostudent.errors import UserError
    from autostudent.sampler import SAMPLERS

    try:
        seed_list = [int(s) for s in seeds.split(",") if s.strip()]
        if any(s < 0 for s in seed_list):
            raise ValueError
    except ValueError:
        raise UserError(
            f"--seeds: {seeds!r} is not a comma-separated list of integers ≥ 0"
        ) from None
    names = [s.strip() for s in samplers.split(",") if s.strip()]
    unknown = [name for name in names if name not in SAMPLERS]
    if unknown:
        known = ", ".join(SAMPLERS.names())
        raise UserError(f"--samplers: unknown sampler {unknown[0]!r} (known: {known})")
    if not seed_list or not names:
        raise UserError("--seeds/--samplers: give at least one of each")
    if teacher is not None and not teacher.exists():
        raise UserError(f"--teacher: {teacher}: no such file")
    if task not in TASKS:
        raise UserError(f"--task: unknown task {task!r} (known: {', '.join(TASKS)})")
    rules = _coverage_rules(coverage)
    budget = None
    if rung_average is not None:  # bench_hypervolume checks the value
        value = None if rung_average.strip().lower() in ("none", "null") else rung_average
        budget = {"rung_average": value}
    log = (lambda line: typer.echo(line, err=True)) if as_json else typer.echo
    result = bench_hypervolume(
        out,
        seeds=seed_list,
        n_trials=trials,
        samplers=names,
        teacher=teacher,
        task=task,
        coverage=rules,
        prune_gap_proposals=prune_gap_proposals,
        budget=budget,
        log=log,
    )
    _print(result, as_json)


def _coverage_rules(pairs: list[str]) -> dict:
    """``--coverage KEY=VALUE`` pairs as ``search.coverage`` fields (values read as YAML;
    ``bench_hypervolume`` checks them)."""
    import yaml

    from autostudent.errors import UserError

    fields = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise UserError(f"--coverage: {pair!r} is not KEY=VALUE (e.g. gap_share=0)")
        fields[key.strip()] = yaml.safe_load(value)
    return fields


@app.command()
def students(
    storage: str = typer.Option(..., "--storage", help="SQLAlchemy URL of the study database."),
    study: str = typer.Option(..., "--study", help="Study name."),
    top: int = typer.Option(
        12, "--top", min=3, help="Students: the front, then dominated ones up to this many."
    ),
    seeds: int = typer.Option(3, "--seeds", min=1, help="Seeds 0..S-1 of every run."),
    epochs: int = typer.Option(5, "--epochs", min=1, help="Epochs of export's recipe."),
    augment: str = typer.Option(
        "none", "--augment", help="Export's --augment for every run (as baselines')."
    ),
    families: str = typer.Option(
        "resnet,mobilenetv2", "--families", help="Hand-designed baseline families (as baselines')."
    ),
    workers: int = typer.Option(1, "--workers", min=1, help="Runs in parallel (processes)."),
    threads: int = typer.Option(1, "--threads", min=1, help="Torch threads per run."),
    raw: Path | None = typer.Option(None, "--raw", help="Also write every run as JSON here."),
    out: Path | None = typer.Option(None, "--out", help="Also write the result to this file."),
    report_only: bool = typer.Option(
        False, "--report-only", help="Train nothing: report what is stored so far."
    ),
    teacher: Path | None = teacher_option(),
    device: str | None = device_option("runs"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Retrain the front, dominated students and the baselines with export's recipe over seeds:
    proxy → final rank correlation, test-accuracy fronts and margins (resumable)."""
    from autostudent.bench.students import bench_students
    from autostudent.families import family_names

    log = (lambda line: typer.echo(line, err=True)) if as_json else typer.echo
    result = bench_students(
        storage,
        study,
        top=top,
        seeds=seeds,
        epochs=epochs,
        augment=augment,
        families=family_names(families),
        workers=workers,
        threads=threads,
        raw_dir=raw,
        report_only=report_only,
        teacher=teacher,
        device=device,
        log=log,
    )
    from autostudent.storage import safe_url

    result["command"] = (
        f"autostudent bench students --storage {safe_url(storage)} --study {study} --top {top} "
        f"--seeds {seeds} --epochs {epochs} --families {families} --workers {workers} "
        f"--threads {threads}"
        + ("" if augment == "none" else f" --augment {augment}")
        + ("" if device is None else f" --device {device}")
    )
    if out is not None:
        tmp = out.with_name(out.name + ".partial")
        tmp.write_text(json.dumps(result, indent=1) + "\n")
        tmp.replace(out)
    _print(result, as_json)
