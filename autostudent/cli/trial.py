"""``autostudent trial``: one KD trial of a study's search space, outside any search."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from autostudent.errors import UserError


def _parse_sets(items: list[str]) -> dict:
    values = {}
    for item in items:
        name, sep, raw = item.partition("=")
        if not sep or not name:
            raise UserError(f"--set: {item!r} is not NAME=VALUE")
        try:
            values[name] = json.loads(raw)
        except json.JSONDecodeError:
            values[name] = raw  # a bare string such as kd_loss=dkd
    return values


def trial(
    config: Path = typer.Argument(..., help="Study YAML: data, teacher, space, KD ranges, budget."),
    sets: list[str] = typer.Option([], "--set", help="Fix a parameter: NAME=VALUE (repeatable)."),
    seed: int = typer.Option(0, "--seed", min=0, help="Seed of the random point and of training."),
    epochs: int | None = typer.Option(None, "--epochs", min=1, help="Override budget.epochs."),
    full: bool = typer.Option(False, "--full", help="Train on the whole training split."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Build one student (given or seeded-random point), KD-train it from the cached teacher
    outputs and print its metrics: val accuracy per epoch, params, FLOPs, latency, time."""
    import optuna
    import torch

    from autostudent.config import load_config
    from autostudent.driver import prepare, teacher_identity
    from autostudent.losses import kd_loss
    from autostudent.teacher_outputs import default_cache_dir, teacher_outputs
    from autostudent.trial import Budget, Caps, run_trial

    c = load_config(config)
    budget_cfg = c.budget.model_copy(
        update={
            **({"epochs": epochs} if epochs else {}),
            **({"train_subset": None} if full else {}),
        }
    )
    c = c.model_copy(update={"budget": budget_cfg})
    torch.set_num_threads(c.resources.cpus_per_trial)  # as a search worker runs it
    p = prepare(c)
    dists = p.factory.distributions()
    fixed = _parse_sets(sets)
    unknown = sorted(set(fixed) - set(dists))
    if unknown:
        raise UserError(f"--set: {unknown[0]!r} is not a parameter ({', '.join(sorted(dists))})")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    scratch = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
    scratch.enqueue_trial(fixed)
    point = scratch.ask(dists).params
    candidate = p.factory.make(0, point)
    outputs = teacher_outputs(
        p.teacher,
        p.data,
        c.cache_dir or default_cache_dir(),
        device=c.resources.device,
        views=c.budget.teacher_views,
        view_features=kd_loss(candidate.kd.loss).needs_features,
    )

    def report(result) -> None:
        if not as_json:
            typer.echo(
                f"epoch {result.epochs}: val accuracy {result.val_accuracy:.4f} "
                f"({result.img_per_s:.0f} img/s)",
                err=True,
            )

    result = run_trial(
        candidate.spec,
        candidate.kd,
        p.data,
        outputs,
        budget=Budget.of(c.budget),
        seed=seed,
        caps=Caps.of(c.caps.resolved(teacher_identity(p, outputs)) if c.caps.relative else c.caps),
        device=c.resources.device,
        report=report,
    )
    out = {
        "point": point,
        "arch_seed": candidate.arch_seed,
        "train_images": len(p.data.x_train),
        "teacher_val_accuracy": outputs.val_accuracy,
        **result.as_dict(),
    }
    if as_json:
        typer.echo(json.dumps(out))
    else:
        typer.echo(
            f"val accuracy {result.val_accuracy:.4f}  params {result.params:,}  "
            f"flops {result.flops:,}  latency {result.latency_ms:.2f} ms  "
            f"train {result.train_seconds:.0f}s  (teacher val {outputs.val_accuracy:.4f})"
        )
