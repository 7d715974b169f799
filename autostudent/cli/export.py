"""``autostudent export``: a chosen student retrained in full with KD, as a deployable directory."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from autostudent.cli._options import device_option, teacher_option


def export(
    storage: str = typer.Option(..., "--storage", help="SQLAlchemy URL of the study database."),
    study: str = typer.Option(..., "--study", help="Study name."),
    out: Path = typer.Option(..., "--out", help="Directory to write (new, or empty)."),
    trial: int | None = typer.Option(None, "--trial", help="Export this trial number."),
    arch: str | None = typer.Option(
        None,
        "--arch",
        help="Or a hand-designed student instead of a search's: FAMILY:PARAMS, the family "
        "(resnet, resnet8/14/20, mobilenetv2, package.module:factory) sized to at most PARAMS "
        "(e.g. mobilenetv2:17k), distilled with the settings `baselines` uses (or --kd's).",
    ),
    pick: str | None = typer.Option(
        None,
        "--pick",
        help="Or pick off the Pareto front: knee | max-accuracy | smallest-within:PTS | "
        "max-accuracy-under:SIZE (e.g. 30k).",
    ),
    epochs: int = typer.Option(15, "--epochs", min=1, help="Retrain epochs (full training split)."),
    family: int = typer.Option(
        1,
        "--family",
        min=1,
        help="Also retrain K-1 other architectures of the trial's generator point and report "
        "the family's mean ± sd (the trial's own architecture is the one written).",
    ),
    augment: str = typer.Option(
        "none",
        "--augment",
        help="Crop + flip: none | views (K fixed views per image, the teacher's outputs on each "
        "cached once) | online (the teacher runs on each augmented batch) | mixup (online, each "
        "batch also mixed with a shuffled copy: function matching) | cached (the clean image's "
        "cached teacher outputs; measured worse than online).",
    ),
    views: int = typer.Option(4, "--views", min=1, help="K of --augment views."),
    seed: int = typer.Option(
        0, "--seed", min=0, help="Seed of weights, batch order and augmentation."
    ),
    seeds: int = typer.Option(
        1,
        "--seeds",
        min=1,
        help="Retrain N times (seeds --seed .. --seed+N-1), with and without KD: test accuracy "
        "and KD gain as mean ± sd. The first seed's student is the one written.",
    ),
    rerank: int = typer.Option(
        0,
        "--rerank",
        min=0,
        help="With --pick max-accuracy[-under:SIZE]: retrain the rule's K best candidates (by "
        "the search's accuracy) with this recipe and export the best on the validation split; "
        "K more retrains. 0: off.",
    ),
    rerank_seeds: int | None = typer.Option(
        None,
        "--rerank-seeds",
        min=1,
        help="Retrains per --rerank candidate (seeds --seed ..), ranked on their mean "
        "validation accuracy; default: --seeds.",
    ),
    no_baseline: bool = typer.Option(
        False, "--no-baseline", help="Skip the no-KD baseline (the card then says so)."
    ),
    workers: int = typer.Option(
        1,
        "--workers",
        min=1,
        help="Retrains at a time, each in its own process (--rerank and --seeds make several; "
        "on a CPU, one worker per core). The results do not depend on it.",
    ),
    threads: int | None = typer.Option(
        None,
        "--threads",
        min=1,
        help="Torch CPU threads (default: torch's, all cores; with --workers N, 1 per worker).",
    ),
    fmt: str = typer.Option(
        "torchscript",
        "--format",
        help="torchscript (student.pt) | onnx (student.onnx, checked with onnxruntime) | both.",
    ),
    teacher: Path | None = teacher_option(),
    kd: str | None = typer.Option(
        None,
        "--kd",
        help="KD settings LOSS,T,ALPHA (e.g. kd,4,0.9) instead of the trial's own, for the "
        "export and its --rerank candidates.",
    ),
    teach_with: Path | None = typer.Option(
        None,
        "--teach-with",
        help="Distil from this teacher instead of the study's: a teacher assistant (an export "
        "directory, e.g. a larger student of the same study) or a teacher trained since. The "
        "figures and the gap stay against the study's teacher; the card names both.",
    ),
    teach_with_input: str | None = typer.Option(
        None,
        "--teach-with-input",
        help="The images --teach-with's teacher expects: normalised | unit | MEAN,…/STD,… "
        "(default: unit for an export, else the study teacher's teacher.input).",
    ),
    device: str | None = device_option(),
    as_json: bool = typer.Option(False, "--json", help="Print metrics.json on stdout."),
) -> None:
    """Retrain the chosen student from scratch with KD on the full training split, measure it
    on the test split, and write DIR/student.pt (TorchScript, normalisation inside) and/or
    student.onnx (dynamic batch), spec.json, metrics.json and card.md. Interrupted, the same
    command resumes: finished retrains and each running one's last epoch wait in .DIR.retrains."""
    from autostudent import api

    metrics = api.load(storage, study).export(
        out,
        trial=trial,
        pick=pick,
        epochs=epochs,
        format=fmt,
        family=family,
        augment=augment,
        seed=seed,
        baseline=not no_baseline,
        threads=threads,
        views=views,
        seeds=seeds,
        rerank=rerank,
        rerank_seeds=rerank_seeds,
        workers=workers,
        teacher=teacher,
        kd=kd,
        teach_with=teach_with,
        teach_with_input=teach_with_input,
        device=device,
        arch=arch,
    )
    if as_json:
        typer.echo(json.dumps(metrics))
        return
    no_kd = metrics["no_kd"]["test_accuracy"]
    gain = "" if no_kd is None else f" (no KD {100 * no_kd:.2f} %)"
    if seeds > 1:
        sd = metrics["test_accuracy_sd"]
        gain += f"; over {seeds} seeds {100 * metrics['test_accuracy_mean']:.2f} ± {100 * sd:.2f} %"
        if metrics["kd_gain"]:
            g = metrics["kd_gain"]
            gain += f", KD gain {100 * g['mean']:+.2f} ± {100 * g['sd']:.2f} pt"
    hand = metrics.get("hand_designed")
    what = f"trial {metrics['trial']}" if hand is None else f"{hand['family']} (hand-designed)"
    typer.echo(
        f"wrote {out}: {what}, {metrics['params']:,} params, test accuracy "
        f"{100 * metrics['test_accuracy']:.2f} %{gain}, teacher "
        f"{100 * (metrics['teacher']['test_accuracy'] or 0):.2f} %"
    )
