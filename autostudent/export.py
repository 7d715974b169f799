"""``export``: pick a student of a study → retrain it in full with KD (and without, the
baseline) → measure it on the test split → write a directory a user can deploy.

Everything comes from the study database: the trial's architecture spec and KD settings, the
study's config (data split, teacher file, batch size, learning rate). Nothing is chosen on the
test split: the student is chosen by a rule or a trial number, the epochs are fixed, and the
shipped file is the trial's own architecture retrained at the first seed; ``--seeds N`` and
``--family K`` only add evidence (test accuracy and KD gain as mean ± sd). Every input is checked
before any training, and the directory is written under a temporary name and renamed at the
end, so a bad request or a crash leaves nothing at ``--out``; the retrains that finished are
kept beside it (``.<out>.retrains``, ``retrains.py``) and a rerun of the same export resumes
from them.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import time
import warnings
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import optuna
import torch
from optuna.trial import FrozenTrial, TrialState
from torch import nn

from autostudent import provenance
from autostudent import study as studydb
from autostudent.candidate import KD_PARAMS
from autostudent.card import render_card
from autostudent.config import ResourcesConfig, StudyConfig, describe_error
from autostudent.datasets import Data, unit_test_split
from autostudent.device import resolve
from autostudent.driver import Prepared, prepare
from autostudent.errors import TrialFailed, UserError
from autostudent.losses import kd_loss
from autostudent.measure import count_flops, count_params, measure_latency
from autostudent.onnx_export import Format, export_format, onnx_artefact
from autostudent.pareto import FrontPoint, pick, ranked
from autostudent.retrain import Retrained, augment_mode, augmentation
from autostudent.retrains import Job, Retrainer, Splits
from autostudent.teacher_outputs import TeacherOutputs, default_cache_dir, teacher_outputs
from autostudent.training import accuracy
from autostudent.trial import KDSettings

FILES = ("student.pt", "spec.json", "metrics.json", "card.md")


@dataclass(frozen=True)
class ExportRequest:
    storage: str
    study: str
    out: Path
    trial: int | None = None
    pick: str | None = None
    epochs: int = 15
    family: int = 1
    augment: str = "none"
    views: int = 4  # K of ``augment="views"``
    seed: int = 0
    seeds: int = 1  # retrains of the trial's architecture, seeds seed .. seed + seeds - 1
    rerank: int = 0  # K ≥ 2: the pick rule's K best candidates, retrained, best on validation
    rerank_seeds: int | None = None  # retrains per rerank candidate (None: ``seeds``)
    workers: int = 1  # retrains at a time, each in its own process (retrains.Retrainer)
    threads: int | None = None  # torch threads of each worker process (None: torch's default)
    baseline: bool = True
    format: str = "torchscript"  # torchscript | onnx | both (onnx_export.FORMATS)
    teacher: Path | None = None  # the teacher file, where it is not where the search read it
    kd: str | None = None  # "LOSS,T,ALPHA": these KD settings instead of the trial's own
    # another teacher teaches the retrains (a teacher assistant: an exported student), fed
    # teach_with_input (default: 'unit' for an export, else the study teacher's input)
    teach_with: Path | None = None
    teach_with_input: str | None = None
    device: str | None = None  # where the retrains run (None: the study's resources.device)
    # "FAMILY:PARAMS": a hand-designed student (families.py) sized to at most PARAMS, exported
    # with the same recipe instead of a trial (the comparison a searched student must win)
    arch: str | None = None


class Normalised(nn.Module):
    """The student with its input normalisation inside: takes images in [0, 1]."""

    def __init__(self, student: nn.Module, mean: tuple[float, ...], std: tuple[float, ...]):
        super().__init__()
        self.student = student
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).reshape(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).reshape(1, -1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.student((x - self.mean) / self.std)


def deployable(student: nn.Module, mean, std, input_shape) -> torch.jit.ScriptModule:
    """TorchScript by tracing (the random-graph students loop over Python lists, which
    ``torch.jit.script`` cannot compile; the graph is fixed, so a trace is exact)."""
    wrapped = Normalised(student, mean, std).cpu().eval()
    example = torch.rand(2, *input_shape)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the deprecation notice of torch.jit itself
        traced = torch.jit.trace(wrapped, example)
    probe = torch.rand(5, *input_shape)  # another batch size than the trace's
    with torch.no_grad():
        if not torch.allclose(traced(probe), wrapped(probe), atol=1e-5):
            raise RuntimeError("the traced student disagrees with the student it traced")
    return traced


def chosen_trial(study: optuna.Study, number: int | None, rule: str | None) -> FrozenTrial:
    """Trial ``number``, or the one ``rule`` picks off the front (exactly one is given)."""
    if rule is not None:
        size = studydb.size_objective(study) or "params"
        front = [FrontPoint(r["trial"], r["accuracy"], r[size]) for r in studydb.pareto_rows(study)]
        number = pick(front, rule).trial
    trials = {t.number: t for t in study.get_trials(deepcopy=False)}
    if number not in trials:
        raise UserError(
            f"--trial: study {study.study_name!r} has no trial {number} "
            f"(trials 0-{max(trials, default=-1)})"
        )
    trial = trials[number]
    if "spec" not in trial.user_attrs or "kd_loss" not in trial.params:
        reason = trial.user_attrs.get("failure", "no architecture was built")
        raise UserError(
            f"--trial: trial {number} ({trial.state.name}) has no architecture spec ({reason})"
        )
    return trial


def study_config(
    study: optuna.Study,
    url: str,
    teacher: Path | None = None,
    *,
    needs_teacher: bool = True,
    device: str | None = None,
) -> StudyConfig:
    """The study's stored config for a retrain: the full training split, the storage the user
    named and, with ``teacher``, the teacher file at another path than the search read it from
    (a study copied to another machine). ``needs_teacher`` (or a ``teacher`` given): the file
    must exist and be the teacher the study was searched with (its SHA-256 is checked).
    ``device``: where to retrain, when not where the search trained (``--device``: a study
    searched on a CPU, retrained on a GPU)."""
    from pydantic import ValidationError

    from autostudent.teacher import file_sha256

    raw = study.user_attrs.get("config")
    if raw is None:
        raise UserError(f"--study: study {study.study_name!r} stores no config (not a search's)")
    try:
        config = StudyConfig.model_validate(raw)
    except ValidationError as exc:
        raise UserError(f"--study: its stored config is invalid: {describe_error(exc)}") from None
    if teacher is not None:
        config = config.model_copy(
            update={"teacher": config.teacher.model_copy(update={"path": Path(teacher)})}
        )
    if teacher is not None or needs_teacher:
        path, field = config.teacher.path, "--teacher" if teacher is not None else "teacher.path"
        if not path.is_file():
            raise UserError(
                f"--teacher: {path} does not exist"
                if teacher is not None
                else f"teacher.path: {path} (where the search read the teacher) does not exist "
                "here; give --teacher PATH, the same file (its SHA-256 is checked)"
            )
        searched = study.user_attrs.get("teacher", {}).get("sha256")
        if searched not in (None, file_sha256(path)):
            raise UserError(
                f"{field}: {path} is not the teacher study {study.study_name!r} was searched "
                "with (its SHA-256 differs)"
            )
    if device is not None:  # a GPU share of the search's Ray trials does not apply here
        r = config.resources
        resources = ResourcesConfig(
            device=device, cpus_per_trial=r.cpus_per_trial, latency_runtime=r.latency_runtime
        )
        config = config.model_copy(update={"resources": resources})
    # The full training split, and the storage the user named (never the one in the config:
    # the study may have been copied away from the database a search still writes to).
    budget = config.budget.model_copy(update={"train_subset": None})
    return config.model_copy(update={"budget": budget, "storage": url})


def check_retrain_device(study: optuna.Study, device: str | None) -> None:
    """One line, before anything loads, when the retrains cannot run where they would:
    ``--device`` (``device``) a GPU torch does not see, or — without it — the device the study
    was searched on (a study searched on a GPU, retrained on this CPU machine: the line names
    ``--device cpu``)."""
    if device is not None:
        resolve(device, "--device")
        return
    searched = study.user_attrs.get("config", {}).get("resources", {}).get("device", "cpu")
    try:
        resolve(searched)
    except UserError as exc:
        raise UserError(f"{exc} (where the search trained; --device cpu retrains here)") from None


def teaching(p: Prepared, path: Path, expects: str | None) -> Prepared:
    """``--teach-with PATH``: the study's data, student space and recipe, taught by another
    teacher — a teacher assistant (Mirzadeh et al. 2020: an exported student between the
    teacher's size and this one's) or a teacher trained since. ``PATH``: a teacher file, or an
    export directory (its ``student.pt``, else its ``student.onnx``: both take pixels in [0, 1];
    the ONNX file also gives its penultimate features, so ``rkd`` can use it). ``expects``: its
    ``teacher.input``; default 'unit' for an export, else the study teacher's. Its SHA-256 is
    not checked against the study's: it is meant to be another file."""
    from pydantic import ValidationError

    from autostudent.config import TeacherConfig, teacher_input
    from autostudent.teacher import TeacherSource, check_teacher, load_teacher

    path = Path(path)  # the Python API may pass a string
    if path.is_dir():  # an export's directory: its TorchScript file, else its ONNX one
        files = [path / name for name in ("student.pt", "student.onnx")]
        if not any(f.is_file() for f in files):
            raise UserError(
                f"--teach-with: {path} is a directory without student.pt or student.onnx (an "
                "export's directory, or give the teacher file)"
            )
        path = next(f for f in files if f.is_file())
    if not path.is_file():
        raise UserError(f"--teach-with: {path} does not exist")
    if expects is not None:
        value = teacher_input(expects, "--teach-with-input")
    else:
        value = "unit" if _exported(path) else p.config.teacher.input
    try:
        config = TeacherConfig(path=path, input=value)
    except ValidationError as exc:
        raise UserError(f"--teach-with-input: {describe_error(exc)}") from None
    d, device = p.data, p.config.resources.device
    try:
        teacher = load_teacher(
            TeacherSource.of(config), device, d.input_shape, d.num_classes, (d.mean, d.std)
        )
        check_teacher(teacher, d.input_shape, d.num_classes)
    except UserError as exc:  # a corrupt file, another input shape or class count
        raise UserError(f"--teach-with: {str(exc).removeprefix('teacher.path: ')}") from None
    kd = p.config.kd
    if not teacher.has_features:
        # the workers prepare this config again, and prepare() refuses KD losses the teacher
        # cannot serve: keep those it can (the ones this export uses are checked by _servable)
        losses = [name for name in kd.losses if not kd_loss(name).needs_features] or ["kd"]
        kd = kd.model_copy(update={"losses": losses})
    config = p.config.model_copy(update={"teacher": config, "kd": kd})
    return replace(p, config=config, teacher=teacher)


def _exported(path: Path) -> bool:
    """Whether ``path`` is an export's student file (metrics.json beside it says so): it takes
    pixels in [0, 1], its normalisation inside."""
    try:
        metrics = json.loads((path.parent / "metrics.json").read_text())
    except (OSError, ValueError):
        return False
    return bool(metrics.get("normalisation", {}).get("inside"))


def _servable(kd: KDSettings, taught: Prepared, flag: str) -> None:
    """A KD loss that needs the teacher's features, against a teacher that exposes none (``--kd``
    's loss, or a trial's own against ``--teach-with``'s teacher): one line, before any
    retrain."""
    if kd_loss(kd.loss).needs_features and not taught.teacher.has_features:
        raise UserError(
            f"{flag}: the KD loss {kd.loss!r} needs the teacher's penultimate features; "
            f"{taught.teacher.path.name} exposes none"
            + ("" if flag == "--kd" else " (give --kd with another loss, e.g. kd,4,0.9)")
        )


def _taught_by(req: ExportRequest, taught: Prepared, outputs: TeacherOutputs) -> dict:
    """metrics.json's ``taught_by``: the teacher that taught the retrains instead of the
    study's (``--teach-with``), as the user named it."""
    shape, runtime = taught.data.input_shape, taught.config.resources.latency_runtime
    return {
        "path": str(req.teach_with),
        "sha256": taught.teacher.sha256,
        "format": taught.teacher.format,
        "input": taught.teacher.input,
        "params": outputs.params,
        "flops": count_flops(taught.teacher.module, shape),
        "latency_ms": measure_latency(runtime, taught.teacher.module, shape),
        "test_accuracy": outputs.test_accuracy,
    }


def family_specs(p: Prepared, trial: FrozenTrial, k: int) -> tuple[list[tuple[int, dict]], int]:
    """The trial's own architecture and k-1 others from its generator point with derived seeds;
    also how many seeds gave no architecture (e.g. a disconnected graph) and were skipped."""
    first = int(trial.user_attrs.get("arch_seed", 0))
    members = [(first, trial.user_attrs["spec"])]
    arch = {n: v for n, v in trial.params.items() if n not in KD_PARAMS}
    skipped, i = 0, 0
    shape = p.data.input_shape
    while len(members) < k:
        i += 1
        seed = int(np.random.SeedSequence([first, i]).generate_state(1)[0])
        try:
            spec = p.factory.space.build_spec(
                arch,
                seed,
                in_channels=shape[0],
                num_classes=p.data.num_classes,
                input_size=shape[1],
            )
        except TrialFailed:
            skipped += 1
            if skipped > 10 * k:
                raise UserError(
                    f"--family: trial {trial.number}'s point yields too few architectures"
                ) from None
            continue
        members.append((seed, spec))
    return members, skipped


def _check_out(out: Path) -> None:
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise UserError(f"--out: {out} exists and is not an empty directory")


@dataclass(frozen=True)
class HandDesigned:
    """``--arch FAMILY:PARAMS``: the hand-designed family's largest member of at most PARAMS
    parameters, sized from its spec without training (``families.sized_spec``, as
    ``autostudent baselines`` sizes its baselines) — exported with the same recipe as a trial,
    so that a searched student and the one a user would build by hand meet on equal terms."""

    family: str
    target: int
    spec: dict
    params: int

    @property
    def name(self) -> str:
        return f"{self.family} {self.params:,}"


def arch_request(text: str) -> tuple[str, int]:
    """``mobilenetv2:16410`` / ``resnet:17k`` / ``pkg.mod:factory:20000`` → (family, size),
    checked before anything loads."""
    from autostudent.families import resolve_family
    from autostudent.pareto import parse_size

    family, _, size = text.rpartition(":")
    target = parse_size(size)
    if not family or target is None:
        raise UserError(f"--arch: {text!r} is not FAMILY:PARAMS (e.g. mobilenetv2:17k)")
    try:
        resolve_family(family)
    except UserError as exc:
        raise UserError(f"--arch: {str(exc).removeprefix('--families: ')}") from None
    return family, int(target)


def hand_designed(p: Prepared, family: str, target: int) -> HandDesigned:
    """``arch_request``'s family sized to ``target`` for the study's data."""
    from autostudent.families import sized_spec, spec_params

    shape = p.data.input_shape
    try:
        spec = sized_spec(family, target, in_channels=shape[0],
                          num_classes=p.data.num_classes, input_size=shape[1])  # fmt: skip
    except UserError as exc:  # no member this small
        raise UserError(f"--arch: {str(exc).removeprefix('--sizes: ')}") from None
    return HandDesigned(family, target, spec, spec_params(spec))


def _baseline_kd(study: optuna.Study) -> tuple[KDSettings, int]:
    """A hand-designed student's KD settings without ``--kd``: those ``autostudent baselines``
    distils its baselines with (the study's most accurate complete trial's), and that trial."""
    from autostudent.baselines import baseline_kd

    try:
        kd, number = baseline_kd(study)
    except UserError as exc:  # no complete trial yet: the user can name the settings
        raise UserError(f"{exc}: give --kd LOSS,T,ALPHA for --arch's student") from None
    return KDSettings(kd.loss, kd.temperature, kd.alpha), number


@dataclass
class Member:
    """One retrained architecture: its seed and spec, the trained model, the exported module
    and that module's test accuracy."""

    arch_seed: int
    spec: dict
    trained: Retrained
    module: torch.jit.ScriptModule
    test_accuracy: float


SHIP_RULE = "the trial's own architecture (arch seed from the study) retrained at the first seed"
HAND_RULE = "the hand-designed family's member named by --arch, retrained at the first seed"


def _check_request(
    req: ExportRequest,
) -> tuple[Format, KDSettings | None, tuple[str, int] | None]:
    """Every flag that can be checked before anything loads: one line for the first bad one.
    Returns the output format, ``--kd``'s settings and ``--arch``'s (family, size)."""
    if sum(x is not None for x in (req.trial, req.pick, req.arch)) != 1:
        raise UserError("--trial/--pick/--arch: give exactly one")
    mode = augment_mode(req.augment)
    fmt = export_format(req.format)
    if req.epochs < 1 or req.family < 1 or req.seeds < 1 or req.workers < 1:
        raise UserError("--epochs/--family/--seeds/--workers: must be ≥ 1")
    if mode.views and req.views < 1:
        raise UserError("--views: must be ≥ 1")
    if req.rerank == 1 or req.rerank < 0:
        raise UserError("--rerank: K ≥ 2 candidates (0: no rerank)")
    if req.rerank and req.pick is None:
        raise UserError("--rerank: reranks the candidates of a --pick rule; --trial or --arch "
                        "names one")  # fmt: skip
    if req.arch is not None and req.family > 1:
        raise UserError(
            "--family: another architecture of a trial's generator point; --arch's student "
            "is hand-designed (give --seeds for evidence)"
        )
    # a bad family or size: one line before anything loads
    arch = None if req.arch is None else arch_request(req.arch)
    if req.rerank_seeds is not None and req.rerank_seeds < 1:
        raise UserError("--rerank-seeds: must be ≥ 1")
    given_kd = parse_kd(req.kd)
    if req.device is not None:
        resolve(req.device, "--device")  # a GPU torch does not see: one line, before any load
    _check_out(req.out)
    return fmt, given_kd, arch


def run_export(req: ExportRequest) -> dict:
    """The whole export; returns metrics.json's content."""
    started = time.perf_counter()
    # the commit this process runs, read now (it is cached): during hours of retraining the
    # checkout may move on, and the card would name code that did not train the student
    provenance.code()
    fmt, given_kd, arch = _check_request(req)
    study = studydb.load(req.storage, req.study)
    check_retrain_device(study, req.device)
    trial = None if arch else chosen_trial(study, req.trial, req.pick)
    # the study's teacher (its SHA-256 checked), on --device's device when given
    p = prepare(study_config(study, req.storage, req.teacher, device=req.device))
    # who teaches the retrains: the study's teacher, or --teach-with's (p stays the study's:
    # the teacher figures, the gap and the card's comparisons are against the study's teacher)
    taught = p if req.teach_with is None else teaching(p, req.teach_with, req.teach_with_input)
    if given_kd:
        _servable(given_kd, taught, "--kd")
    test = unit_test_split(
        p.data.name, p.config.data.root, p.config.data.options(), p.config.cache_dir
    )
    if test is None:
        raise UserError(f"data: {p.data.name} has no test split to measure the export on")
    splits = Splits(taught, epochs=req.epochs, augment=req.augment, views=req.views)
    # each finished retrain is kept beside --out until the export is written: a rerun of an
    # interrupted export loads them instead of training them again
    # (the Retrainer says what it resumes: retrains of this very request only)
    store = req.out.parent / f".{req.out.name}.retrains"
    trainer = Retrainer(splits, workers=req.workers, threads=req.threads, store=store)
    reranked, hand, kd_from = None, None, None
    if req.rerank:
        trial, reranked = rerank(study, trainer, req, given_kd)
    if trial is not None:
        specs, skipped = family_specs(p, trial, req.family)
        kd, name = _kd_of(trial, given_kd), f"trial {trial.number}"
    else:  # --arch: a hand-designed student, distilled as `baselines` distils its baselines
        hand = hand_designed(p, *arch)
        specs, skipped, name = [(0, hand.spec)], 0, hand.name
        kd, kd_from = (given_kd, None) if given_kd else _baseline_kd(study)
    _servable(kd, taught, "--kd" if given_kd else "--teach-with")
    data = splits.data[True]
    outputs = splits.outputs(True, kd_loss(kd.loss).needs_features)

    seeds = [req.seed + i for i in range(req.seeds)]
    own_seed, own_spec = specs[0]
    jobs = [  # the trial's own architecture, KD, every seed: the first is the one shipped
        (own_seed, Job(own_spec, True, kd, s, f"{name} KD{_of('seed', i, len(seeds))}"))
        for i, s in enumerate(seeds)
    ]
    if req.baseline:
        jobs += [
            (own_seed, Job(own_spec, True, None, s, f"{name} no KD{_of('seed', i, len(seeds))}"))
            for i, s in enumerate(seeds)
        ]
    jobs += [  # the family's other members, at the first seed
        (a, Job(spec, True, kd, req.seed, f"{name} KD{_of('family', i + 1, len(specs))}"))
        for i, (a, spec) in enumerate(specs[1:], start=1)
    ]
    features = kd_loss(kd.loss).needs_features
    jobs = [(a, replace(job, view_features=features)) for a, job in jobs]
    members = []
    for (arch_seed, job), done in zip(jobs, trainer.run([j for _, j in jobs]), strict=True):
        module = deployable(done.model, data.mean, data.std, data.input_shape)
        members.append(Member(arch_seed, job.spec, done, module, accuracy(module, test.x, test.y)))
    runs, rest = members[: len(seeds)], members[len(seeds) :]
    bases, others = (rest[: len(seeds)], rest[len(seeds) :]) if req.baseline else ([], rest)
    shipped = runs[0]
    if taught is not p:  # the study teacher's own figures, for the table and the gap
        c = p.config
        ours = teacher_outputs(p.teacher, data, c.cache_dir or default_cache_dir(),
                               device=c.resources.device)  # fmt: skip
    else:
        ours = outputs
    metrics = _metrics(req, study, trial, p, ours, test.scale, len(test.y), kd, shipped)
    metrics["taught_by"] = None if taught is p else _taught_by(req, taught, outputs)
    if hand is not None:
        metrics["kd"]["from_trial"] = kd_from
        metrics["hand_designed"] = {"family": hand.family, "target_params": hand.target,
                                    "params": hand.params}  # fmt: skip
    metrics["shipped"] = {
        "rule": SHIP_RULE if hand is None else HAND_RULE,
        "chosen_by": (
            f"--arch {req.arch}"
            if hand
            else f"--pick {req.pick}"
            if req.pick
            else f"--trial {trial.number}"
        )
        + (f" --rerank {req.rerank}" if reranked else ""),
        "trial": None if hand else trial.number,
        "arch_seed": shipped.arch_seed,
        "seed": req.seed,
        "epochs": req.epochs,
        "seeds": req.seeds,
        "family": req.family,
    }
    metrics["seeds"] = _over_seeds(seeds, runs, bases)
    metrics["test_accuracy_mean"] = metrics["seeds"]["kd"]["mean"]
    metrics["test_accuracy_sd"] = metrics["seeds"]["kd"]["sd"]
    metrics["kd_gain"] = metrics["seeds"]["kd_gain"]
    metrics["kd_gap_closed"] = gap_closed(
        metrics["kd_gain"], metrics["seeds"]["no_kd"], metrics["teacher"]["test_accuracy"]
    )
    metrics["teacher_fit"] = teacher_fit(runs, bases, data, outputs, p.config.resources.device)
    metrics["no_kd"] = {"test_accuracy": None, "skipped": "--no-baseline"}
    if bases:
        metrics["no_kd"] = {
            "test_accuracy": bases[0].test_accuracy,  # the shipped student's own seed
            "test_accuracy_mean": metrics["seeds"]["no_kd"]["mean"],
            "test_accuracy_sd": metrics["seeds"]["no_kd"]["sd"],
            "retrain_seconds": bases[0].trained.seconds,
        }
    if others:
        metrics["family"] = _family([shipped, *others], skipped)
    if reranked:
        metrics["rerank"] = reranked
    metrics["versus_baseline"] = (
        versus_baseline(study, metrics, req)
        if hand is None
        else {
            "baseline": None,
            "why": "this student is itself hand-designed (`--arch`); a searched student's "
            "export with the same recipe is what it compares with",
        }
    )
    # the retrains of the trial's own net (KD and no KD: the jobs before the family's), kept in
    # the study as baselines' runs are
    own = [(job, m) for (_, job), m in zip(jobs, members, strict=True)][: len(runs + bases)]
    metrics["final_runs"] = store_final_runs(study, trial or hand, req, splits, own, metrics)
    onnx = None
    if fmt.onnx:  # checked against the torch module on the test split; raises on disagreement
        onnx, metrics["onnx"] = onnx_artefact(shipped.module, data.input_shape, test.x, test.y)
    metrics["files"] = [
        *(["student.pt"] if fmt.torchscript else []),
        *(["student.onnx"] if onnx else []),
    ]
    # how many retrains ran, and how many an interrupted run of this export had finished
    metrics["retrains"] = {"run": trainer.ran, "resumed": trainer.resumed}
    metrics["wall_seconds"] = time.perf_counter() - started
    _write(req.out, shipped.module if fmt.torchscript else None, shipped.spec, metrics, onnx)
    shutil.rmtree(store, ignore_errors=True)  # written: nothing left to resume
    return metrics


def store_final_runs(
    study: optuna.Study,
    trial: FrozenTrial | HandDesigned,
    req: ExportRequest,
    splits: Splits,
    retrained: list[tuple[Job, Member]],
    metrics: dict,
) -> dict:
    """Keep the export's retrains of the trial's own architecture (``retrained``: with its KD
    settings and without, every seed) in the study as final-fidelity runs (``final_runs``),
    keyed as ``baselines`` and ``bench students`` key theirs: ``status`` and the dashboard then
    show the exported student's margin once the families are sized to it, and those commands
    do not train the same runs again. A key already stored is left as it is. Not with ``--kd``
    (not the trial's KD settings) or ``--augment views`` (its K is not in a recipe's key):
    those are not the runs the other commands would make. A hand-designed student (``--arch``)
    is kept as ``baselines`` keeps that family's member. ``metrics``: the export's (FLOPs,
    threads and test images: the same for every retrain)."""
    from autostudent.final_runs import KD, Recipe, RunPlan, record, run_record, stored

    if req.kd is not None or req.teach_with is not None or augment_mode(req.augment).views:
        return {
            "stored": 0,
            "why": "--kd, --teach-with or --augment views: not a recipe the others run",
        }
    b = splits.budget
    recipe = Recipe(b.epochs, b.batch_size, b.lr, b.weight_decay, req.augment)
    done, kept = stored(study), 0
    for job, m in retrained:
        kd = KD(job.kd.loss, job.kd.temperature, job.kd.alpha) if job.kd else None
        if isinstance(trial, HandDesigned):
            plan = RunPlan("baseline", trial.family, m.spec, trial.params, kd, job.seed, recipe,
                           target_params=trial.target)  # fmt: skip
        else:
            plan = RunPlan("searched", f"trial {trial.number}", m.spec,
                           int(trial.user_attrs["params"]), kd, job.seed, recipe,
                           trial=trial.number)  # fmt: skip
        if plan.key in done:
            continue
        run = run_record(
            plan,
            m.trained,
            m.test_accuracy,
            flops=metrics["flops"],
            test_images=metrics["test_images"],
            train_images=len(splits.data[True].y_train),
            threads=metrics["threads"],
            wall_seconds=m.trained.seconds,
            device=metrics["device"],
        )
        record(study, {**run, "source": "export"}, None)
        kept += 1
    return {"stored": kept, "already_stored": len(retrained) - kept}


def _kd_of(trial: FrozenTrial, given: KDSettings | None = None) -> KDSettings:
    """The KD settings a retrain uses: ``--kd``'s when given, else the trial's own."""
    if given is not None:
        return given
    return KDSettings(
        trial.params["kd_loss"],
        float(trial.params["kd_temperature"]),
        float(trial.params["kd_alpha"]),
    )


def parse_kd(text: str | None) -> KDSettings | None:
    """``--kd LOSS,T,ALPHA`` (e.g. ``kd,4,0.9``: Hinton's KD as RepDistiller trains it)."""
    if text is None:
        return None
    parts = [p.strip() for p in text.split(",")]
    try:
        loss, temperature, alpha = parts[0], float(parts[1]), float(parts[2])
        if len(parts) != 3:
            raise ValueError
    except (ValueError, IndexError):
        raise UserError(f"--kd: {text!r} is not LOSS,T,ALPHA (e.g. kd,4,0.9)") from None
    try:
        kd_loss(loss)
    except UserError as exc:  # an unknown loss: the registered ones are named
        raise UserError(f"--kd: {exc}") from None
    if not temperature > 0 or not 0 <= alpha <= 1:
        raise UserError(f"--kd: T must be > 0 and ALPHA in [0, 1], got T {temperature:g}, "
                        f"ALPHA {alpha:g}")  # fmt: skip
    return KDSettings(loss, temperature, alpha)


def rerank(
    study: optuna.Study, trainer: Retrainer, req: ExportRequest, given_kd: KDSettings | None = None
) -> tuple[FrozenTrial, dict]:
    """``--rerank K``: the K complete students the ``--pick`` rule ranks highest on the search's
    proxy accuracy, each retrained with this export's recipe (epochs, augmentation, its own KD
    settings or ``--kd``'s) at ``--rerank-seeds`` seeds (default ``--seeds``) on the training
    split and measured on the validation split; the one with the best mean validation accuracy
    (the higher-ranked on a tie) is exported. The proxy (few epochs on a subset, one seed)
    misranks students that are close; this spends K × seeds retrains to rank them at final
    fidelity, still without touching the test split. One seed is not enough where candidates
    are close: on the demo teacher trained 40 epochs, one seed's validation took a 27K student
    over a 17K one that scores as well on test (92.41 against 92.51 %, 3 seeds;
    studies/results/students_e40)."""
    size = studydb.size_objective(study) or "params"
    trials = {
        t.number: t
        for t in studydb.complete_trials(study)
        if "spec" in t.user_attrs and "kd_loss" in t.params
    }
    points = [
        FrontPoint(n, t.user_attrs["val_accuracy"], t.user_attrs[size]) for n, t in trials.items()
    ]
    top = ranked(points, req.pick, req.rerank)
    kds = {pt.trial: _kd_of(trials[pt.trial], given_kd) for pt in top}
    for kd in kds.values():  # before any of the K × seeds retrains
        _servable(kd, trainer.splits.p, "--kd" if given_kd else "--teach-with")
    features = any(kd_loss(kd.loss).needs_features for kd in kds.values())
    seeds = [req.seed + i for i in range(req.rerank_seeds or req.seeds)]
    jobs = [
        Job(
            trials[pt.trial].user_attrs["spec"],
            False,
            kds[pt.trial],
            seed,
            f"rerank {rank}/{len(top)}: trial {pt.trial}" + _of("seed", i, len(seeds)),
            view_features=features,
        )
        for rank, pt in enumerate(top, start=1)
        for i, seed in enumerate(seeds)
    ]
    done = iter(trainer.run(jobs))
    data, device = trainer.splits.data[False], trainer.splits.p.config.resources.device
    rows = []
    for point in top:
        runs = [next(done) for _ in seeds]
        vals = [accuracy(r.model, data.x_val, data.y_val, device) for r in runs]
        rows.append({"trial": point.trial, size: point.size, "search_val_accuracy": point.accuracy,
                     "val_accuracy": statistics.fmean(vals), "val_accuracies": vals,
                     "retrain_seconds": sum(r.seconds for r in runs)})  # fmt: skip
    best = max(range(len(rows)), key=lambda i: (rows[i]["val_accuracy"], -i))
    return trials[rows[best]["trial"]], {
        "k": req.rerank,
        "rule": req.pick,
        "size": size,
        "epochs": req.epochs,
        "seed": req.seed,
        "seeds": seeds,
        "train_images": len(data.x_train),
        "val_images": len(data.y_val),
        "candidates": rows,
        "chosen": rows[best]["trial"],
    }


def versus_baseline(study: optuna.Study, metrics: dict, req: ExportRequest) -> dict:
    """The best hand-designed student of at most this one's params that ``autostudent
    baselines`` retrained with this very recipe (epochs, batch, lr, weight decay, augmentation),
    and this student's margin over it (its mean over seeds); or why there is none."""
    from autostudent.baselines import baseline_summary, best_baseline, unsized_families
    from autostudent.final_runs import groups, stored
    from autostudent.storage import safe_url

    b = study_config(study, req.storage, needs_teacher=False).budget
    recipe = {
        "epochs": req.epochs,
        "batch_size": b.batch_size,
        "lr": b.lr,
        "weight_decay": b.weight_decay,
        "augment": req.augment,
    }
    runs = list(stored(study).values())
    base = best_baseline(groups(runs), metrics["params"], recipe)
    if base is None:
        return {
            "baseline": None,
            "why": f"no hand-designed student of at most {metrics['params']:,} params was "
            f"retrained with this recipe: autostudent baselines --epochs {req.epochs}",
        }
    mean = metrics.get("test_accuracy_mean") or metrics["test_accuracy"]
    out = {
        "baseline": baseline_summary(base),
        "margin_pt": 100 * (mean - base["test_accuracy_mean"]),
        "recipe": recipe,
        # families with no member sized to this student yet, and the command that sizes them
        "unsized": unsized_families(runs, metrics["params"], recipe),
    }
    if out["unsized"]:
        out["size_them"] = (
            f"autostudent baselines --storage {safe_url(req.storage)} --study "
            f"{study.study_name} --families {','.join(u['family'] for u in out['unsized'])} "
            f"--sizes {metrics['params']} --no-students --epochs {req.epochs} "
            f"--seeds {len(base['seeds'])}"
        )
    return out


def _of(what: str, i: int, n: int) -> str:
    return f" ({what} {i + 1}/{n})" if n > 1 else ""


def _stats(values: list[float]) -> dict:
    """Mean ± sample sd (None for one value) of a list, the list kept."""
    return {
        "values": values,
        "mean": statistics.fmean(values) if values else None,
        "sd": statistics.stdev(values) if len(values) > 1 else None,
    }


def _over_seeds(seeds: list[int], runs: list[Member], bases: list[Member]) -> dict:
    """Test accuracy with and without KD over the seeds, and the KD gain paired by seed (the
    same seed gives both runs the same initial weights and batch order)."""
    kd = [m.test_accuracy for m in runs]
    no_kd = [m.test_accuracy for m in bases]
    return {
        "seeds": seeds,
        "kd": _stats(kd),
        "no_kd": _stats(no_kd) if bases else None,
        "kd_gain": _stats([a - b for a, b in zip(kd, no_kd, strict=True)]) if bases else None,
        "retrain_seconds": [m.trained.seconds for m in runs + bases],
    }


def gap_closed(gain: dict | None, no_kd: dict | None, teacher: float) -> dict | None:
    """The share of the no-KD student's gap to the teacher that KD closes: the mean paired gain
    over the teacher's accuracy minus the no-KD mean. None without a no-KD run, or when the
    student without KD is not below the teacher (there is no gap to close)."""
    if gain is None or no_kd is None or no_kd["mean"] >= teacher:
        return None
    gap = teacher - no_kd["mean"]
    return {"share": gain["mean"] / gap, "gap_pt": 100 * gap}


FIT_IMAGES = 10_000  # agreement read to about ±0.2 pt


def teacher_fit(
    runs: list[Member], bases: list[Member], data: Data, outputs: TeacherOutputs, device: str
) -> dict:
    """How closely the students match the teacher that taught them on images they were taught
    on: top-1 agreement with it and accuracy, over the first ``FIT_IMAGES`` of the training
    split, clean (no crop, flip or mix). A KD student that disagrees with its teacher on its own
    training images underfits the teacher's function (Stanton et al. 2021, "Does knowledge
    distillation really work?"): a larger student or a longer schedule may take more from it.
    Training images only: nothing here reads the test split."""
    n = min(FIT_IMAGES, len(data.x_train))
    x, y = data.x_train[:n], data.y_train[:n]
    taught = outputs.logits[:n].argmax(1)

    def of(members: list[Member]) -> dict | None:
        if not members:
            return None
        with torch.inference_mode():
            return {
                name: _stats([accuracy(m.trained.model, x, labels, device) for m in members])
                for name, labels in (("agreement", taught), ("accuracy", y))
            }

    return {
        "images": n,
        "teacher_accuracy": (taught == torch.as_tensor(y)).float().mean().item(),
        "kd": of(runs),
        "no_kd": of(bases),
    }


def _family(members: list[Member], skipped: int) -> dict:
    accs = [m.test_accuracy for m in members]
    return {
        "members": [
            {
                "arch_seed": m.arch_seed,
                "params": count_params(m.trained.model),
                "test_accuracy": m.test_accuracy,
                "retrain_seconds": m.trained.seconds,
            }
            for m in members
        ],
        "test_accuracy_mean": statistics.fmean(accs),
        "test_accuracy_sd": statistics.stdev(accs),
        # the trial's own architecture, whatever the others scored: never chosen on the test split
        "shipped": 0,
        "skipped_seeds": skipped,
    }


def _metrics(
    req: ExportRequest,
    study: optuna.Study,
    trial: FrozenTrial | None,
    p: Prepared,
    outputs: TeacherOutputs,
    input_scale: str,
    test_images: int,
    kd: KDSettings,
    chosen: Member,
) -> dict:
    shape = p.data.input_shape
    model, done = chosen.trained.model, chosen.trained
    searched = study.user_attrs.get("teacher", {})
    runtime = p.config.resources.latency_runtime
    return {
        "study": study.study_name,
        "trial": None if trial is None else trial.number,  # None: --arch, hand-designed
        "pick": req.pick or (f"--arch {req.arch}" if trial is None else f"trial {trial.number}"),
        "test_accuracy": chosen.test_accuracy,
        "params": count_params(model),
        "flops": count_flops(model, shape),
        # the exported module, as deployed, beside the teacher as the search loaded it, both in
        # the study's latency runtime (onnxruntime runs their ONNX exports)
        "latency_ms": measure_latency(runtime, chosen.module, shape),
        "latency_runtime": runtime,
        "epochs": req.epochs,
        "retrain_seconds": done.seconds,
        "retrain_cpu_seconds": done.cpu_seconds,
        "epoch_seconds": done.epoch_seconds,
        "train_images": len(p.data.x_train) + len(p.data.x_val),
        "test_images": test_images,
        "input_shape": list(shape),
        "input_scale": input_scale,
        "normalisation": {"mean": list(p.data.mean), "std": list(p.data.std), "inside": True},
        # what the augmentation did, when there was one
        "augment": {
            "mode": req.augment,
            **(augmentation(p.data) if augment_mode(req.augment).augments else {}),
            **({"views": req.views} if augment_mode(req.augment).views else {}),
        },
        "kd": {
            "loss": kd.loss,
            "temperature": kd.temperature,
            "alpha": kd.alpha,
            # --arch without --kd: the settings `baselines` gives its hand-designed students
            "source": "--kd" if req.kd else "the trial's own" if trial else "baselines",
        },
        "arch_seed": chosen.arch_seed,
        "seed": req.seed,
        "batch_size": p.config.budget.batch_size,
        "lr": p.config.budget.lr,
        # torch threads of each retrain: the worker processes' (--workers N), or this one's
        "threads": (req.threads or 1) if req.workers > 1 else torch.get_num_threads(),
        "workers": req.workers,
        "device": p.config.resources.device,
        # where and from what the figures came: another CPU rounds differently, so the same
        # seeds retrain to other accuracies there (docs/study-file.md, "What seed fixes")
        "machine": provenance.machine(),
        "code": provenance.code(),
        "dataset": p.data.name,
        "classes": list(p.data.classes) if p.data.classes else None,  # label i's name
        "teacher": {
            "test_accuracy": outputs.test_accuracy,
            "params": outputs.params,
            "flops": count_flops(p.teacher.module, shape),
            "latency_ms": measure_latency(runtime, p.teacher.module, shape),
            # as the search's study file named it (the study's teacher identity), not where
            # this machine keeps it: metrics.json travels with the student
            "path": searched.get("path") or p.config.teacher.given_path,
            "sha256": p.teacher.sha256,
            "input": p.teacher.input,  # the images it was fed (teacher.input)
        },
        "search": {
            "val_accuracy": None if trial is None else trial.user_attrs.get("val_accuracy"),
            "epochs": None if trial is None else trial.user_attrs.get("epochs"),
            "train_subset": study.user_attrs.get("config", {})
            .get("budget", {})
            .get("train_subset"),
            "finished_trials": studydb.finished(study),
            "complete_trials": len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))),
            "front": [
                {"trial": r["trial"], "val_accuracy": r["accuracy"], "params": r["params"]}
                for r in studydb.pareto_rows(study)
            ],
            "teacher_val_accuracy": searched.get("val_accuracy"),
        },
    }


def _write(
    out: Path,
    module: torch.jit.ScriptModule | None,
    spec: dict,
    metrics: dict,
    onnx: bytes | None = None,
) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.partial-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        if module is not None:
            module.save(str(tmp / "student.pt"))
        if onnx is not None:
            (tmp / "student.onnx").write_bytes(onnx)
        (tmp / "spec.json").write_text(json.dumps(spec, indent=1) + "\n")
        (tmp / "metrics.json").write_text(json.dumps(metrics, indent=1) + "\n")
        (tmp / "card.md").write_text(render_card(metrics))
        if out.exists():
            out.rmdir()  # empty (checked before training)
        tmp.rename(out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
