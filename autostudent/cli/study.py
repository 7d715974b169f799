"""``autostudent search | status | trials``: run a study and look into its database (the
Python API's ``search``, ``load``, ``Study.status`` and ``Study.trials``, printed)."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from autostudent import api
from autostudent.errors import UserError
from autostudent.storage import safe_url


def search(
    config: Path = typer.Argument(
        ..., help="Study YAML, or a built-in study by name (smoke, fashion_mnist)."
    ),
    n_trials: int | None = typer.Option(
        None, "--n-trials", min=1, help="Run until this many trials are finished."
    ),
    workers: int | None = typer.Option(None, "--workers", min=1, help="Trials in parallel."),
    timeout: str | None = typer.Option(
        None,
        "--timeout",
        help="Wall clock of this run: 900, 15m, 2h (no trial starts after it; the running ones "
        "finish). The search ends at --n-trials or --timeout, whichever comes first.",
    ),
    storage: str | None = typer.Option(
        None, "--storage", help="SQLAlchemy URL of the study database."
    ),
    study: str | None = typer.Option(None, "--study", help="Study name."),
    seed: int | None = typer.Option(
        None, "--seed", min=0, help="Seed of the sampler and architectures."
    ),
    teacher: Path | None = typer.Option(
        None,
        "--teacher",
        help="Your teacher file (.pt2, TorchScript, ONNX) in place of the study file's: its "
        "search, your teacher. Give it a new --study: a study keeps its teacher.",
    ),
    ray_address: str | None = typer.Option(None, "--ray-address", help="Join this Ray cluster."),
    quiet: bool = typer.Option(False, "--quiet", help="No live progress."),
) -> None:
    """Create the study, or continue it, until N trials are finished (COMPLETE + PRUNED)."""
    result = api.search(
        config,
        storage=storage,
        study=study,
        teacher=teacher,
        n_trials=n_trials,
        workers=workers,
        timeout=None if timeout is None else parse_duration(timeout, "--timeout"),
        seed=seed,
        ray_address=ray_address,
        progress=not quiet,
    )
    s = result.status()
    typer.echo(
        f"study {s['study']}: {s['states']['COMPLETE']} complete, {s['states']['PRUNED']} pruned, "
        f"{s['states']['FAIL']} failed, {s['fallbacks']} sampler fallbacks; "
        f"Pareto front {len(s['pareto'])} trials, "
        f"hypervolume {s['hypervolume']:.4f}  ({safe_url(result.storage)})"
    )
    if s["stopped"]:
        typer.echo(_stopped(s["stopped"]))


def _stopped(stop: dict) -> str:
    return (
        f"stopped at its time budget ({stop['timeout_s']:g} s) with {stop['finished']}/"
        f"{stop['n_trials']} trials finished; the same command continues it"
    )


DURATION_UNITS = {"s": 1, "m": 60, "min": 60, "h": 3600}


def parse_duration(text: str, flag: str) -> float:
    """``900``, ``90s``, ``15m``, ``2h`` → seconds (> 0)."""
    t = text.strip().lower()
    number = t.rstrip("abcdefghijklmnopqrstuvwxyz")
    unit = t[len(number) :] or "s"
    try:
        seconds = float(number) * DURATION_UNITS[unit]
    except (ValueError, KeyError):
        raise UserError(f"{flag}: {text!r} is not a duration (e.g. 900, 15m, 2h)") from None
    if not seconds > 0:
        raise UserError(f"{flag}: {text!r} must be more than 0")
    return seconds


def status(
    storage: str = typer.Option(..., "--storage", help="SQLAlchemy URL of the study database."),
    study: str = typer.Option(..., "--study", help="Study name."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """States, Pareto front, hypervolume and teacher of a study."""
    s = api.load(storage, study).status()
    if as_json:
        typer.echo(json.dumps(s))
        return
    st = s["states"]
    typer.echo(f"study {s['study']}  objectives {', '.join(s['objectives'])}")
    typer.echo("  " + "  ".join(f"{k} {v}" for k, v in st.items()))
    typer.echo(f"  sampler fallbacks {s['fallbacks']}")
    if s["proposals"]:
        relaxed = ", ".join(f"{k} {v}" for k, v in s["relaxed"].items()) or "none"
        proposed = ", ".join(f"{k} {v}" for k, v in s["proposals"].items())
        typer.echo(f"  proposals: {proposed}; coverage rules relaxed: {relaxed}")
    if s["skipped_files"]:
        typer.echo(f"  data: {s['skipped_files']} unreadable files skipped (data.skip_bad_files)")
    d = s["driver"]
    if d:
        state = "running" if d["alive"] else ("stopped" if d["released"] else "dead")
        typer.echo(
            f"  driver {state}: {d['host']} pid {d['pid']}, last heartbeat {d['heartbeat']}; "
            f"{s['recoveries']} trials recovered, {s['storage_retries']} storage retries"
        )
    if s["worker_log"]:
        typer.echo(f"  worker log: {s['worker_log']}")
    if s["stopped"]:
        typer.echo(f"  last run {_stopped(s['stopped'])}")
    t = s["teacher"]
    if t.get("params"):
        fed = "" if t.get("input", "normalised") == "normalised" else f", fed {t['input']} images"
        typer.echo(f"  teacher: {t['params']:,} params, val accuracy {t['accuracy']:.4f}{fed}")
        if t.get("chance") and t["accuracy"] < 2 * t["chance"]:
            typer.echo(
                f"  the teacher is near chance ({t['chance']:.4f}): is teacher.input the images "
                "it was trained on? (`autostudent teacher eval --input …` checks it)"
            )
    if s["caps"]:
        typer.echo(f"  caps: {_caps(s['caps'], s['caps_given'] or {})}")
    if s["val_images"]:
        n = s["val_images"]
        typer.echo(f"  validation: {n:,} images, one image {1 / n:.4f} of accuracy")
    typer.echo(f"  hypervolume {s['hypervolume']:.4f}; Pareto front:")
    for r in s["pareto"]:
        margin = r["margin_over_baseline"]
        versus = (
            ""
            if not s["baselines"]  # no hand-designed student retrained yet: no column
            else f"  vs hand-designed {'—' if margin is None else f'{margin:+.2f} pt'}"
        )
        typer.echo(
            f"    trial {r['trial']:>4}  acc {r['accuracy']:.4f}  params {r['params']:>9,}  "
            f"flops {r['flops']:>12,}  latency {r['latency_ms']:.2f} ms{versus}"
        )
    if s["baselines"]:
        families = sorted({b["family"] for b in s["baselines"]})
        typer.echo(
            f"  vs hand-designed: points of test accuracy (export's recipe, mean over seeds) over "
            f"the best hand-designed student of at most its size ({', '.join(families)}: "
            f"{len(s['baselines'])} retrained); —: not both retrained at one recipe yet "
            "(autostudent baselines)"
        )
    near = s["stopped_under_cap"]
    if near and near["trials"]:
        size = near["size"]
        listed = ", ".join(f"{r['trial']} ({_size(r[size])})" for r in near["trials"][:8])
        more = f" and {len(near['trials']) - 8} more" if len(near["trials"]) > 8 else ""
        typer.echo(
            f"  between the front's largest ({_size(near['front_largest'])} {size}) and the cap "
            f"({_size(near['cap'])}): {len(near['trials'])} stopped at a rung — trials "
            f"{listed}{more}; "
            "autostudent export --trial N retrains one to the end"
        )


def _caps(caps: dict, given: dict) -> str:
    """``params ≤ 102,691 (teacher/3), flops ≤ 5,000,000``: a fraction of the teacher as given."""
    return ", ".join(
        f"{key.removeprefix('max_')} ≤ {_size(cap)}"
        + (f" ({given[key]})" if isinstance(given.get(key), str) else "")
        for key, cap in caps.items()
    )


def _size(value: float) -> str:
    """A size as status prints it: counts with thousands separators, milliseconds to 0.01."""
    return f"{int(value):,}" if float(value).is_integer() else f"{value:.2f}"


def trials(
    storage: str = typer.Option(..., "--storage", help="SQLAlchemy URL of the study database."),
    study: str = typer.Option(..., "--study", help="Study name."),
    fmt: str = typer.Option("csv", "--format", help="csv or json."),
    out: Path | None = typer.Option(None, "--out", help="Write to this file instead of stdout."),
) -> None:
    """Every trial as a table: params, KD settings, metrics, state, failure reason."""
    if fmt not in ("csv", "json"):
        raise UserError(f"--format: {fmt!r} is not csv or json")
    frame = api.load(storage, study).trials()
    text = (
        frame.to_csv(index=False) if fmt == "csv" else frame.to_json(orient="records", indent=None)
    )
    if out is None:
        typer.echo(text)
    else:
        tmp = out.with_name(out.name + ".partial")
        tmp.write_text(text)
        tmp.replace(out)
