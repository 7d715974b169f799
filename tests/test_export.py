"""Export: the pick rules on hand-made fronts (pure), then real exports of a real digits study —
the written student reloads in a process that imports nothing but torch and reproduces its
metrics.json test accuracy; a family reports mean ± sd; bad requests write nothing."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import optuna
import pytest
import torch
from optuna.trial import TrialState, create_trial

from autostudent.datasets import unit_test_split
from autostudent.errors import UserError
from autostudent.export import gap_closed
from autostudent.pareto import PICK_RULES, FrontPoint, pick, ranked

# --- pick rules (pure) -------------------------------------------------------------------------

FRONT = [  # accuracy climbs fast, then flattens: the knee is trial 1
    FrontPoint(0, 0.50, 100),
    FrontPoint(1, 0.90, 1_000),
    FrontPoint(2, 0.92, 10_000),
    FrontPoint(3, 0.93, 100_000),
]


def test_pick_rules_on_hand_made_fronts():
    assert pick(FRONT, "max-accuracy").trial == 3
    assert pick(FRONT, "knee").trial == 1
    assert pick(list(reversed(FRONT)), "knee").trial == 1  # order does not matter
    # a late knee: flat, then a jump at the large end
    late = [FrontPoint(0, 0.80, 100), FrontPoint(1, 0.81, 1_000), FrontPoint(2, 0.95, 10_000)]
    assert pick(late, "knee").trial == 2  # trial 1 is below the chord: no knee there
    assert pick(FRONT[:2], "knee").trial == 1  # two points: the more accurate end
    assert pick(FRONT[:1], "knee").trial == 0
    # within 1.0 pt of 0.93 → ≥ 0.92 (trial 2 is exactly on the edge); within 0.5 pt → only 3
    assert pick(FRONT, "smallest-within:1").trial == 2
    assert pick(FRONT, "smallest-within:0.5").trial == 3
    assert pick(FRONT, "smallest-within:50").trial == 0
    # the best that fits a budget: sizes in plain numbers or with a k/M suffix
    assert pick(FRONT, "max-accuracy-under:10000").trial == 2
    assert pick(FRONT, "max-accuracy-under:9.9k").trial == 1
    assert pick(FRONT, "max-accuracy-under:1M").trial == 3
    assert set(PICK_RULES.names()) == {
        "knee",
        "max-accuracy",
        "max-accuracy-under",
        "smallest-within",
    }


@pytest.mark.parametrize(
    "rule",
    [
        "nope",
        "knee:3",
        "max-accuracy:1",
        "smallest-within",
        "smallest-within:x",
        "smallest-within:-1",
        "max-accuracy-under",
        "max-accuracy-under:0",
        "max-accuracy-under:lots",
        "max-accuracy-under:99",  # smaller than every front student
    ],
)
def test_bad_pick_rules_name_the_flag(rule, user_error):
    user_error(lambda: pick(FRONT, rule), "--pick")


def test_rerank_candidates_are_the_rules_best_by_accuracy_dominated_ones_included():
    # trial 4 is dominated (trial 2 is smaller and more accurate) but fits the budget
    points = [*FRONT, FrontPoint(4, 0.91, 20_000)]
    assert [p.trial for p in ranked(points, "max-accuracy-under:30k", 3)] == [2, 4, 1]
    assert [p.trial for p in ranked(points, "max-accuracy", 2)] == [3, 2]
    assert [p.trial for p in ranked(points, "max-accuracy-under:1000", 5)] == [1, 0]  # all fit
    rule = "max-accuracy-under:30k"
    assert pick(points, rule).trial == ranked(points, rule, 1)[0].trial  # K = 1: the rule's pick


@pytest.mark.parametrize("rule", ["knee", "smallest-within:1"])
def test_rerank_needs_a_rule_that_chooses_by_accuracy(rule, user_error):
    user_error(lambda: ranked(FRONT, rule, 3), "--rerank", "max-accuracy-under")


def test_pick_on_an_empty_front_is_a_user_error():
    with pytest.raises(UserError, match="--pick"):
        pick([], "knee")


# --- a real digits study, exported -------------------------------------------------------------


@pytest.fixture(scope="module")
def study_db(tmp_path_factory, digits_study) -> tuple[str, str]:
    """The session's real digits study (6 NAGO students, 2 epochs, two Ray workers), copied."""
    copy = tmp_path_factory.mktemp("export-study") / "study.db"
    shutil.copyfile(digits_study[0], copy)
    return f"sqlite:///{copy}", digits_study[1]


def copied(url: str, name: str, db: Path) -> tuple[str, optuna.Study]:
    """A copy of the study's database at ``db`` (to change it): its URL and the study."""
    shutil.copy(url.removeprefix("sqlite:///"), db)
    copy = f"sqlite:///{db}"
    return copy, optuna.load_study(study_name=name, storage=copy)


# Runs with torch alone: what a user who never installed autostudent has.
RELOAD = """
import json, sys, torch
student = torch.jit.load(sys.argv[1]).eval()
test = torch.load(sys.argv[2], weights_only=True)
with torch.no_grad():
    predicted = student(test["x"]).argmax(1)
assert not any(m.startswith("autostudent") for m in sys.modules)
print(json.dumps((predicted == test["y"]).double().mean().item()))
"""


def reloaded_accuracy(out: Path, tmp: Path) -> float:
    """The test accuracy of ``out/student.pt`` on digits' test split, in a process with torch
    alone."""
    test = unit_test_split("digits")
    torch.save({"x": torch.from_numpy(test.x), "y": torch.from_numpy(test.y)}, tmp / "t.pt")
    reloaded = subprocess.run(
        [sys.executable, "-c", RELOAD, str(out / "student.pt"), str(tmp / "t.pt")],
        capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    return json.loads(reloaded.stdout)


@pytest.mark.slow  # the session's digits search, retrained
def test_export_writes_a_student_that_reloads_with_plain_torch(
    cli, study_db, tmp_path, digits_study
):
    url, name = study_db
    out = tmp_path / "student"
    code, _stdout, stderr = cli(
        "export", "--storage", url, "--study", name, "--pick", "knee", "--epochs", "2",
        "--augment", "cached", "--out", str(out),
    )  # fmt: skip
    assert code == 0, stderr
    assert sorted(p.name for p in out.iterdir()) == sorted(
        ["student.pt", "spec.json", "metrics.json", "card.md"]
    )
    metrics = json.loads((out / "metrics.json").read_text())
    keys = ("test_accuracy", "params", "flops", "latency_ms", "epochs", "retrain_seconds")
    for key in (*keys, "retrain_cpu_seconds"):
        assert metrics[key] > 0, key
    assert set(metrics["teacher"]) >= {"test_accuracy", "params", "flops", "latency_ms"}
    # the teacher as the study file named it: no path of this machine travels with the student
    assert metrics["teacher"]["path"] == "teachers/digits.pt2"
    assert str(digits_study[0].parent) not in (out / "metrics.json").read_text()
    assert 0 < metrics["no_kd"]["test_accuracy"] <= 1
    assert metrics["epochs"] == 2
    assert metrics["augment"] == {"mode": "cached", "crop_pad": 1, "flip": False}  # digits
    assert metrics["train_images"] == 1150 + 288  # train + val: the full training split
    # the figures name the machine and the code that made them (another CPU retrains otherwise)
    assert metrics["machine"]["cpu"] and metrics["machine"]["torch"] == torch.__version__
    assert set(metrics["code"]) == {"version", "commit", "dirty"}
    study = optuna.load_study(study_name=name, storage=url)
    assert (
        json.loads((out / "spec.json").read_text())
        == study.trials[metrics["trial"]].user_attrs["spec"]
    )

    assert reloaded_accuracy(out, tmp_path) == metrics["test_accuracy"]

    card = (out / "card.md").read_text()
    assert "torch.jit.load" in card and "KD gain" in card
    assert f"({metrics['machine']['cpu']}, cpu, {metrics['threads']} torch thread" in card
    assert f"torch {torch.__version__})" in card
    assert f"{100 * metrics['test_accuracy']:.2f} %" in card
    assert str(tuple(metrics["input_shape"])).replace(")", "") in card.replace("(N, ", "(")


@pytest.mark.slow  # the session's digits search, retrained
def test_family_reports_mean_and_sd(cli, study_db, tmp_path):
    url, name = study_db
    out = tmp_path / "family"
    code, stdout, stderr = cli(
        "export", "--storage", url, "--study", name, "--pick", "max-accuracy", "--epochs", "1",
        "--family", "2", "--augment", "mixup", "--no-baseline", "--json", "--out", str(out),
    )  # fmt: skip
    assert code == 0, stderr
    metrics = json.loads(stdout)
    assert metrics["augment"] == {"mode": "mixup", "crop_pad": 1, "flip": False}  # online + mix
    family = metrics["family"]
    accs = [m["test_accuracy"] for m in family["members"]]
    assert len(accs) == 2 and len({m["arch_seed"] for m in family["members"]}) == 2
    assert family["test_accuracy_mean"] == pytest.approx(sum(accs) / 2)
    assert family["test_accuracy_sd"] == pytest.approx(abs(accs[0] - accs[1]) / 2**0.5)
    # the trial's own architecture is shipped, whichever member scored best on the test split
    study = optuna.load_study(study_name=name, storage=url)
    own = study.trials[metrics["trial"]].user_attrs
    assert family["shipped"] == 0 and "best" not in family
    assert metrics["test_accuracy"] == accs[0]
    assert family["members"][0]["arch_seed"] == own.get("arch_seed", 0) == metrics["arch_seed"]
    assert json.loads((out / "spec.json").read_text()) == own["spec"]
    assert metrics["no_kd"]["test_accuracy"] is None and metrics["kd_gain"] is None
    card = (out / "card.md").read_text()
    assert "--no-baseline" in card and "mean ± sd" in card
    assert "member 1, the trial's own architecture" in card and "best on the test" not in card
    assert "a family of 2 architectures" in card


@pytest.mark.slow
def test_seeds_report_mean_sd_and_kd_gain_and_ship_the_first_seed(cli, study_db, tmp_path):
    url, name = study_db
    out = tmp_path / "seeds"
    code, stdout, stderr = cli(
        "export", "--storage", url, "--study", name, "--pick", "knee", "--epochs", "1",
        "--seeds", "2", "--seed", "3", "--augment", "views", "--views", "2", "--json",
        "--out", str(out),
    )  # fmt: skip
    assert code == 0, stderr
    metrics = json.loads(stdout)
    over = metrics["seeds"]
    kd, no_kd = over["kd"]["values"], over["no_kd"]["values"]
    assert over["seeds"] == [3, 4] and len(kd) == len(no_kd) == 2
    assert kd != no_kd  # KD and no KD are separate runs
    assert metrics["test_accuracy_mean"] == pytest.approx(sum(kd) / 2)
    assert metrics["test_accuracy_sd"] == pytest.approx(abs(kd[0] - kd[1]) / 2**0.5)
    gains = [a - b for a, b in zip(kd, no_kd, strict=True)]
    assert metrics["kd_gain"]["values"] == pytest.approx(gains)
    assert metrics["kd_gain"]["mean"] == pytest.approx(sum(gains) / 2)
    assert metrics["kd_gain"]["sd"] == pytest.approx(abs(gains[0] - gains[1]) / 2**0.5)
    gap = metrics["teacher"]["test_accuracy"] - sum(no_kd) / 2
    closed = metrics["kd_gap_closed"]
    assert closed is None if gap <= 0 else closed["share"] == pytest.approx(sum(gains) / 2 / gap)
    assert metrics["no_kd"]["test_accuracy"] == no_kd[0]
    fit = metrics["teacher_fit"]  # on training images: one value per run, with KD and without
    assert fit["images"] == min(10_000, metrics["train_images"])
    values = [fit[arm][k]["values"] for arm in ("kd", "no_kd") for k in ("agreement", "accuracy")]
    assert [len(v) for v in values] == [2] * 4 and all(0 < a <= 1 for v in values for a in v)
    assert metrics["augment"] == {"mode": "views", "crop_pad": 1, "flip": False, "views": 2}
    # the first seed's student is the one written, whatever the second one scored
    assert metrics["test_accuracy"] == kd[0] and metrics["seed"] == 3
    shipped = metrics["shipped"]
    assert (shipped["seed"], shipped["seeds"], shipped["epochs"]) == (3, 2, 1)
    assert shipped["chosen_by"] == "--pick knee" and shipped["trial"] == metrics["trial"]
    assert reloaded_accuracy(out, tmp_path) == kd[0]

    card = (out / "card.md").read_text()
    assert "## How this student was chosen" in card and "`--pick knee`" in card
    assert "retrained at the first seed (seed 3" in card and "nothing was chosen" in card
    g = metrics["kd_gain"]
    assert f"**KD gain: {100 * g['mean']:+.2f} ± {100 * g['sd']:.2f} pt**" in card
    assert "seeds 3, 4" in card and "| 3 |" in card and "| 4 |" in card
    assert f"Fit to the teacher on {fit['images']:,} training images" in card


@pytest.mark.slow  # the session's digits search, retrained
def test_bad_requests_exit_2_and_write_nothing(cli, study_db, tmp_path):
    url, name = study_db
    # a copy with one failed trial that never got an architecture
    copy, study = copied(url, name, tmp_path / "copy.db")
    study.add_trial(
        create_trial(state=TrialState.FAIL, user_attrs={"failure": "params over the cap"})
    )
    failed = len(study.trials) - 1
    full = tmp_path / "full"
    full.mkdir()
    (full / "keep.txt").write_text("mine")
    work = tmp_path / "work"
    work.mkdir()
    out = str(work / "out")
    cases = [
        (["--pick", "nope", "--out", out], "--pick"),
        (["--pick", "smallest-within:x", "--out", out], "--pick"),
        (["--trial", "99", "--out", out], "--trial"),
        (["--trial", str(failed), "--out", out], "--trial"),
        (["--trial", "0", "--pick", "knee", "--out", out], "--trial/--pick"),
        (["--pick", "knee", "--augment", "sideways", "--out", out], "--augment"),
        (["--pick", "knee", "--out", str(full)], "--out"),
        (["--trial", "0", "--rerank", "2", "--out", out], "--rerank"),
        (["--pick", "max-accuracy", "--rerank", "1", "--out", out], "--rerank"),
        (["--pick", "knee", "--rerank", "2", "--out", out], "--rerank"),
        (["--pick", "max-accuracy", "--rerank", "2", "--rerank-seeds", "0"], "--rerank-seeds"),
        (["--pick", "knee", "--workers", "0", "--out", out], "--workers"),
        (["--pick", "knee", "--kd", "hinton,4,0.9", "--out", out], "--kd"),
        (["--pick", "knee", "--kd", "kd,4", "--out", out], "--kd"),
        (["--pick", "knee", "--kd", "kd,4,1.5", "--out", out], "--kd"),
        (["--pick", "knee", "--kd", "kd,0,0.5", "--out", out], "--kd"),
        (["--pick", "knee", "--device", "tpu", "--out", out], "--device"),
        (["--pick", "knee", "--device", "cuda:99", "--out", out], "--device"),
    ]
    for args, field in cases:
        code, _, err = cli("export", "--storage", copy, "--study", name, "--epochs", "1", *args)
        assert code == 2, (args, err)
        assert err.startswith("error: ") and field in err and err.count("\n") == 1, err
    assert not list(work.iterdir())  # not even a partial directory
    assert [p.name for p in full.iterdir()] == ["keep.txt"]


@pytest.mark.slow  # the session's digits search, retrained
def test_a_teacher_that_moved_is_named_and_given_with_teacher(
    cli, study_db, tmp_path, teacher_file
):
    """A study copied to another machine: the teacher is not where the search read it."""
    url, name = study_db
    copy, study = copied(url, name, tmp_path / "moved.db")
    config = study.user_attrs["config"]
    gone = tmp_path / "gone" / "digits.pt2"
    study.set_user_attr("config", {**config, "teacher": {**config["teacher"], "path": str(gone)}})
    out = tmp_path / "out"
    export = ("export", "--storage", copy, "--study", name, "--trial", "0", "--epochs", "1",
              "--no-baseline", "--out", str(out))  # fmt: skip
    code, _, err = cli(*export)
    assert code == 2 and err.count("\n") == 1, err
    assert str(gone) in err and "--teacher" in err
    code, _, err = cli("baselines", "--storage", copy, "--study", name, "--epochs", "1")
    assert code == 2 and "--teacher" in err and err.count("\n") == 1, err
    code, _, err = cli("baselines", "--storage", copy, "--study", name, "--dry-run")
    assert code == 0, err  # a plan needs no teacher

    other = tmp_path / "other.pt2"  # another file: refused before anything is trained
    other.write_bytes(teacher_file.read_bytes() + b"\0")
    code, _, err = cli(*export, "--teacher", str(other))
    assert code == 2 and "--teacher" in err and "SHA-256" in err, err
    assert not out.exists()

    moved = tmp_path / "elsewhere" / "digits.pt2"
    moved.parent.mkdir()
    shutil.copy(teacher_file, moved)
    # and KD settings of the user's own instead of the trial's (Hinton's, as RepDistiller's)
    code, _, err = cli(*export, "--teacher", str(moved), "--kd", "kd,4,0.9")
    assert code == 0, err
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["teacher"]["path"] == "teachers/digits.pt2"  # as the study file named it
    own = study.trials[0].params
    assert metrics["kd"] == {"loss": "kd", "temperature": 4.0, "alpha": 0.9, "source": "--kd"}
    assert (own["kd_loss"], own["kd_temperature"], own["kd_alpha"]) != ("kd", 4.0, 0.9)
    assert "given with `--kd` instead of the trial's own" in (out / "card.md").read_text()


@pytest.mark.slow  # the session's digits search, retrained five times
def test_teach_with_an_exported_student_as_teacher_assistant(cli, study_db, tmp_path):
    """--teach-with DIR: an exported student teaches another one (a teacher assistant), fed
    pixels in [0, 1] as it takes them; the figures and the gap stay the study teacher's, the
    card names both, and bad requests are one line each with nothing written."""
    url, name = study_db
    base = ("export", "--storage", url, "--study", name, "--epochs", "1", "--threads", "1")
    ta = tmp_path / "assistant"
    code, stdout, stderr = cli(*base, "--pick", "max-accuracy", "--no-baseline", "--format",
                               "both", "--json", "--out", str(ta))  # fmt: skip
    assert code == 0, stderr
    assistant = json.loads(stdout)

    out = tmp_path / "taught"
    args = (*base, "--pick", "knee", "--workers", "2", "--json")  # the pool prepares it again
    code, stdout, stderr = cli(*args, "--teach-with", str(ta), "--out", str(out))
    assert code == 0, stderr
    m = json.loads(stdout)
    by = m["taught_by"]
    assert by["path"] == str(ta) and by["input"] == "unit" and by["format"] == "torchscript"
    assert by["params"] == assistant["params"]
    # the assistant read back as a teacher scores what its own export measured (the feed's
    # round trip through normalised pixels may flip an image)
    assert by["test_accuracy"] == pytest.approx(assistant["test_accuracy"], abs=2 / 360)
    assert m["teacher"]["path"] == "teachers/digits.pt2"  # the figures: the study's teacher
    assert m["teacher"]["params"] > by["params"]
    assert m["final_runs"]["stored"] == 0  # not the runs `baselines` would make
    card = (out / "card.md").read_text()
    assert "given with `--teach-with` instead of the study's teacher `digits.pt2`" in card
    assert "| the teacher that taught it (`--teach-with`) |" in card

    code, stdout, stderr = cli(*args, "--out", str(tmp_path / "plain"))
    assert code == 0, stderr
    plain = json.loads(stdout)
    assert plain["taught_by"] is None and plain["trial"] == m["trial"]
    assert plain["seeds"]["no_kd"] == m["seeds"]["no_kd"]  # no teacher: the same run
    x = torch.from_numpy(unit_test_split("digits").x[:64])
    with torch.no_grad():  # another teacher taught it: other weights (1 epoch: accuracy may tie)
        taught, alone = (
            torch.jit.load(str(d / "student.pt")).eval() for d in (out, tmp_path / "plain")
        )
        assert not torch.allclose(taught(x), alone(x))

    # the same assistant as ONNX (an export of --format onnx): read with its features
    onnx_only = tmp_path / "assistant-onnx"
    shutil.copytree(ta, onnx_only, ignore=shutil.ignore_patterns("student.pt"))
    code, stdout, stderr = cli(*base, "--trial", str(m["trial"]), "--no-baseline", "--json",
                               "--teach-with", str(onnx_only), "--kd", "rkd,4,0.5",
                               "--out", str(tmp_path / "taught-onnx"))  # fmt: skip
    assert code == 0, stderr
    by = json.loads(stdout)["taught_by"]
    assert by["format"] == "onnx" and by["input"] == "unit"
    assert by["test_accuracy"] == pytest.approx(assistant["test_accuracy"], abs=2 / 360)

    (tmp_path / "empty").mkdir()
    (tmp_path / "junk.pt").write_text("not a model")
    work = tmp_path / "work"
    work.mkdir()
    cases = [
        (["--teach-with", str(tmp_path / "nope")], "--teach-with"),
        (["--teach-with", str(tmp_path / "empty")], "--teach-with"),
        (["--teach-with", str(tmp_path / "junk.pt")], "--teach-with: "),
        (["--teach-with", str(ta), "--teach-with-input", "0.5/x"], "--teach-with-input"),
        (["--teach-with", str(ta), "--teach-with-input", "sideways"], "--teach-with-input"),
        (["--teach-with", str(ta), "--kd", "rkd,4,0.5"], "--kd"),  # a TorchScript: no features
    ]
    for extra, field in cases:
        code, _, err = cli(*base, "--pick", "knee", *extra, "--out", str(work / "out"))
        assert code == 2, (extra, err)
        assert err.startswith(f"error: {field}") and err.count("\n") == 1, err
    assert not list(work.iterdir())


@pytest.mark.slow  # the session's digits search, retrained
def test_arch_exports_a_hand_designed_student_with_the_same_recipe(cli, study_db, tmp_path):
    """--arch mobilenetv2:SIZE: the family's largest member of at most SIZE params, distilled
    with the KD settings `baselines` uses and retrained as a trial would be; its runs are kept
    as `baselines` keeps that member's, so `baselines` does not train them again."""
    from autostudent.baselines import baseline_kd
    from autostudent.families import sized_spec, spec_params
    from autostudent.final_runs import stored

    url, name = study_db
    copy, study = copied(url, name, tmp_path / "arch.db")
    out = tmp_path / "mobilenet"
    code, stdout, stderr = cli(
        "export", "--storage", copy, "--study", name, "--arch", "mobilenetv2:3k", "--epochs", "1",
        "--threads", "1", "--json", "--out", str(out),
    )  # fmt: skip
    assert code == 0, stderr
    m = json.loads(stdout)
    spec = sized_spec("mobilenetv2", 3000, in_channels=1, num_classes=10, input_size=8)
    assert json.loads((out / "spec.json").read_text()) == spec
    assert m["hand_designed"] == {"family": "mobilenetv2", "target_params": 3000,
                                  "params": spec_params(spec)}  # fmt: skip
    assert m["params"] == spec_params(spec) <= 3000 and m["trial"] is None
    kd, number = baseline_kd(study)
    assert (m["kd"]["loss"], m["kd"]["temperature"], m["kd"]["alpha"]) == (
        kd.loss, kd.temperature, kd.alpha,
    )  # fmt: skip
    assert m["kd"]["source"] == "baselines" and m["kd"]["from_trial"] == number
    assert m["shipped"]["chosen_by"] == "--arch mobilenetv2:3k" and m["shipped"]["trial"] is None
    assert m["versus_baseline"]["baseline"] is None and 0 < m["no_kd"]["test_accuracy"] <= 1

    # the hand-designed runs (the other tests' exports stored their trials' runs in the study)
    runs = [r for r in stored(optuna.load_study(study_name=name, storage=copy)).values()
            if r["role"] == "baseline"]  # fmt: skip
    assert sorted((r["role"], r["family"], r["kd"] is not None) for r in runs) == [
        ("baseline", "mobilenetv2", False), ("baseline", "mobilenetv2", True),
    ]  # fmt: skip
    assert {r["test_accuracy"] for r in runs} == {m["test_accuracy"], m["no_kd"]["test_accuracy"]}
    assert all(r["source"] == "export" for r in runs)
    code, stdout, stderr = cli(
        "baselines", "--storage", copy, "--study", name, "--families", "mobilenetv2", "--sizes",
        "3000", "--no-students", "--seeds", "1", "--epochs", "1", "--dry-run", "--json",
    )  # fmt: skip
    assert code == 0, stderr
    planned = json.loads(stdout)
    assert (planned["planned"], planned["to_run"]) == (2, 0)  # the export's runs: not again

    assert reloaded_accuracy(out, tmp_path) == m["test_accuracy"]
    card = (out / "card.md").read_text()
    assert card.startswith(f"# Student: hand-designed `mobilenetv2` for study `{name}`")
    assert "Not by the search: `--arch mobilenetv2:3k` named" in card
    assert f"settings of trial {number}, the study's most accurate" in card
    assert "Not measured: this student is itself hand-designed" in card

    work = tmp_path / "work"
    work.mkdir()
    cases = [
        (["--arch", "vgg:3k"], "--arch"),
        (["--arch", "mobilenetv2"], "--arch"),
        (["--arch", "mobilenetv2:lots"], "--arch"),
        (["--arch", "mobilenetv2:10"], "--arch: mobilenetv2 has no member of at most 10 params"),
        (["--arch", "mobilenetv2:3k", "--trial", "0"], "--trial/--pick/--arch"),
        (["--arch", "mobilenetv2:3k", "--family", "2"], "--family"),
        (["--arch", "mobilenetv2:3k", "--rerank", "2"], "--rerank"),
    ]
    for extra, field in cases:
        code, _, err = cli("export", "--storage", copy, "--study", name, "--epochs", "1", *extra,
                           "--out", str(work / "out"))  # fmt: skip
        assert code == 2, (extra, err)
        assert err.startswith(f"error: {field}") and err.count("\n") == 1, err
    assert not list(work.iterdir())


def test_arch_on_a_study_without_a_complete_trial_asks_for_kd():
    from autostudent.export import _baseline_kd

    study = optuna.create_study(directions=["maximize", "minimize"])
    with pytest.raises(UserError, match=r"no complete trial yet: give --kd LOSS,T,ALPHA"):
        _baseline_kd(study)


def test_a_trials_own_kd_loss_that_needs_features_names_teach_with():
    from types import SimpleNamespace

    from autostudent.export import _servable
    from autostudent.trial import KDSettings

    taught = SimpleNamespace(teacher=SimpleNamespace(has_features=False, path=Path("ta.pt")))
    with pytest.raises(UserError, match=r"^--teach-with: the KD loss 'rkd' .* ta.pt exposes none"):
        _servable(KDSettings("rkd", 4.0, 0.5), taught, "--teach-with")
    _servable(KDSettings("kd", 4.0, 0.5), taught, "--teach-with")  # logits only: served


@pytest.mark.slow  # the session's digits search, retrained twice
def test_a_study_searched_on_a_gpu_exports_here_with_device_cpu(cli, study_db, tmp_path):
    """A study whose config says cuda (searched on a GPU machine), exported on this CPU: one
    line naming the way out, then --device cpu retrains here, on a pool whose workers validate
    the config again (no GPU share left over from the search's Ray trials)."""
    url, name = study_db
    copy, study = copied(url, name, tmp_path / "gpu.db")
    config = study.user_attrs["config"]
    gpu = {**config["resources"], "device": "cuda:99", "gpus_per_trial": 0.5}
    study.set_user_attr("config", {**config, "resources": gpu})
    out = tmp_path / "out"
    args = ("export", "--storage", copy, "--study", name, "--trial", "0", "--epochs", "1",
            "--workers", "2", "--threads", "1", "--json", "--out", str(out))  # fmt: skip
    code, _, err = cli(*args)
    assert code == 2 and err.count("\n") == 1 and not out.exists(), err
    assert "resources.device: 'cuda:99' asked for" in err and "--device cpu" in err
    code, stdout, err = cli(*args, "--device", "cpu")
    assert code == 0, err
    assert json.loads(stdout)["device"] == "cpu"


@pytest.mark.slow  # the session's digits search, retrained
def test_rerank_exports_the_best_candidate_on_validation(cli, study_db, tmp_path):
    """--rerank 3 --rerank-seeds 2: the rule's 3 best candidates retrained twice each (seeds 0
    and 1) at the export's recipe on the training split, the best mean validation accuracy
    exported; the card shows the candidates."""
    url, name = study_db
    out = tmp_path / "reranked"
    code, stdout, stderr = cli(
        "export", "--storage", url, "--study", name, "--pick", "max-accuracy", "--rerank", "3",
        "--rerank-seeds", "2", "--epochs", "1", "--no-baseline", "--json", "--out", str(out),
    )  # fmt: skip
    assert code == 0, stderr
    metrics = json.loads(stdout)
    r = metrics["rerank"]
    study = optuna.load_study(study_name=name, storage=url)
    complete = [t for t in study.trials if t.state == TrialState.COMPLETE]
    by_proxy = sorted(complete, key=lambda t: (-t.values[0], t.user_attrs["params"]))
    assert [c["trial"] for c in r["candidates"]] == [t.number for t in by_proxy[:3]]
    assert r["seeds"] == [0, 1]
    for c in r["candidates"]:
        assert len(c["val_accuracies"]) == 2
        assert c["val_accuracy"] == pytest.approx(sum(c["val_accuracies"]) / 2)
    vals = [c["val_accuracy"] for c in r["candidates"]]
    best = r["candidates"][vals.index(max(vals))]["trial"]  # the first of equals
    assert r["chosen"] == metrics["trial"] == metrics["shipped"]["trial"] == best
    assert metrics["shipped"]["chosen_by"] == "--pick max-accuracy --rerank 3"
    assert r["val_images"] > 0 and r["train_images"] > r["val_images"] and r["epochs"] == 1
    card = (out / "card.md").read_text()
    assert "`--pick max-accuracy --rerank 3`" in card and "**(exported)**" in card
    assert "seeds 0-1" in card and "validation, mean of 2" in card
    assert card.count("| 1 |") >= 1 and "measured on the validation split" in card


@pytest.mark.slow  # the session's digits search, retrained four times
def test_workers_train_the_same_students_as_one_process(cli, study_db, tmp_path):
    """--workers 2: the retrains run two at a time in spawned processes, and give what one
    process gives (same seeds, one thread each): the same test accuracies, the same file."""
    url, name = study_db
    metrics, students = [], []
    for workers in ("1", "2"):
        out = tmp_path / f"w{workers}"
        code, stdout, stderr = cli(
            "export", "--storage", url, "--study", name, "--pick", "knee", "--epochs", "1",
            "--seeds", "2", "--no-baseline", "--threads", "1", "--workers", workers, "--json",
            "--out", str(out),
        )  # fmt: skip
        assert code == 0, stderr
        metrics.append(json.loads(stdout))
        students.append(torch.jit.load(str(out / "student.pt")).eval())
    one, two = metrics
    assert two["workers"] == 2 and two["threads"] == 1 and one["workers"] == 1
    assert one["seeds"]["kd"]["values"] == two["seeds"]["kd"]["values"]
    x = torch.from_numpy(unit_test_split("digits").x[:64])
    with torch.no_grad():
        assert torch.equal(students[0](x), students[1](x))


def test_time_left_takes_the_retrains_in_order_workers_at_a_time():
    from autostudent.retrains import time_left

    # two KD retrains side by side (100 s each), then a no-KD one on the first free worker
    assert time_left([(10, 10.0), (20, 5.0), (5, 4.0)], 2) == pytest.approx(120.0)
    assert time_left([(10, 10.0), (20, 5.0), (5, 4.0)], 1) == pytest.approx(220.0)
    assert time_left([(10, 10.0)], 4) == pytest.approx(100.0)  # more workers than retrains
    assert time_left([(10, 10.0), (5, None)], 2) is None  # a kind that has not run an epoch


def test_the_time_left_is_said_for_the_retrains_whose_pace_is_known():
    """A kind that has not run an epoch leaves the rest unknown, not the whole line."""
    from autostudent.retrains import left_line

    kinds = ["KD", "KD", "KD", "no-KD", "no-KD", "no-KD"]
    turns = [(60, 60.0), (60, 60.0), (300, 60.0), (300, None), (300, None), (300, None)]
    line = left_line(turns, kinds, 2)
    assert line.startswith("6 retrain(s) to finish: ~6.0 h more for the 3 KD at the latest")
    assert line.endswith("pace; the 3 no-KD: not known until one has run an epoch")
    assert left_line(turns[:3], kinds[:3], 2) == (
        "3 retrain(s) to finish: ~6.0 h more at the latest epochs' pace, 2 at a time"
    )
    assert left_line(turns[3:], kinds[3:], 2) == (
        "3 retrain(s) to finish: not known until each kind has run an epoch"
    )


def killed_at(point: str, *args: str) -> None:
    """Run the command line ``args`` with a SIGKILL armed at killpoint ``point``; it must die."""
    killed = subprocess.run(
        [sys.executable, "-m", "autostudent", *args],
        env={**os.environ, "AUTOSTUDENT_KILL_AT": point},
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]


@pytest.mark.slow  # the session's digits search, retrained eight times
def test_an_export_killed_mid_way_resumes_its_finished_retrains(cli, study_db, tmp_path):
    """SIGKILL after 2 of 4 retrains: nothing at --out; the rerun loads those 2 from the store
    beside it, trains the other 2, removes the store, and ships what an export never
    interrupted ships."""
    url, name = study_db
    args = ["export", "--storage", url, "--study", name, "--pick", "knee", "--epochs", "1",
            "--seeds", "2", "--threads", "1", "--json"]  # fmt: skip
    out, store = tmp_path / "killed", tmp_path / ".killed.retrains"
    killed_at("retrain_saved:2", *args, "--out", str(out))
    assert not out.exists() and len(list(store.glob("*.pt"))) == 2
    code, stdout, stderr = cli(*args, "--out", str(out))
    assert code == 0, stderr
    assert (
        f"resuming from {store}: 2 of 4 retrains finished earlier (loaded, not rerun), 0 go "
        "on from their last epoch, 2 to start" in stderr
    )
    assert "(3 of 4 retrains done)" in stderr and "(4 of 4 retrains done)" in stderr
    # how long the rest takes: the no-KD pace is unknown until one has run, then known
    after = stderr.split("(3 of 4 retrains done)")[1]
    assert "2 retrain(s) to finish: not known until each kind" in stderr
    assert re.search(r"1 retrain\(s\) to finish: ~\d+ s more .* 1 at a time", after), after
    resumed = json.loads(stdout)
    assert resumed["retrains"] == {"run": 2, "resumed": 2}
    assert not store.exists()
    code, stdout, stderr = cli(*args, "--out", str(tmp_path / "whole"))
    assert code == 0, stderr
    whole = json.loads(stdout)
    assert whole["retrains"] == {"run": 4, "resumed": 0}
    for arm in ("kd", "no_kd"):
        assert whole["seeds"][arm]["values"] == resumed["seeds"][arm]["values"]


@pytest.mark.slow  # the session's digits search, retrained four times
def test_an_export_killed_mid_retrain_goes_on_from_its_last_epoch(cli, study_db, tmp_path):
    """SIGKILL after the first of two epochs: the store holds that epoch's checkpoint, the
    rerun goes on from it, and ships what an uninterrupted export ships."""
    url, name = study_db
    args = ["export", "--storage", url, "--study", name, "--pick", "knee", "--epochs", "2",
            "--threads", "1", "--json"]  # fmt: skip
    out, store = tmp_path / "killed", tmp_path / ".killed.retrains"
    killed_at("retrain_epoch:1", *args, "--out", str(out))
    assert [f.name.endswith(".epoch.pt") for f in store.glob("*.pt")] == [True]
    code, stdout, stderr = cli(*args, "--out", str(out))
    assert code == 0, stderr
    assert "resumed after epoch 1" in stderr
    assert (
        "0 of 2 retrains finished earlier (loaded, not rerun), 1 go on from their last "
        "epoch, 1 to start" in stderr
    )
    assert not store.exists()
    code, whole, stderr = cli(*args, "--out", str(tmp_path / "whole"))
    assert code == 0, stderr
    for arm in ("kd", "no_kd"):
        assert (
            json.loads(whole)["seeds"][arm]["values"] == json.loads(stdout)["seeds"][arm]["values"]
        )


def test_teacher_fit_is_agreement_with_the_teachers_top1_on_training_images():
    from types import SimpleNamespace

    from autostudent.export import teacher_fit

    def member(shift: int) -> SimpleNamespace:  # predicts class (x + shift) mod 3
        def model(xb: torch.Tensor) -> torch.Tensor:
            return torch.nn.functional.one_hot((xb.flatten(1)[:, 0].long() + shift) % 3, 3).float()

        return SimpleNamespace(trained=SimpleNamespace(model=model))

    x = torch.tensor([0, 1, 2, 0, 1, 2]).float().reshape(6, 1, 1, 1)
    taught = torch.tensor([0, 1, 2, 1, 1, 1])  # the teacher's top-1
    data = SimpleNamespace(x_train=x, y_train=torch.tensor([0, 1, 2, 0, 1, 0]))
    outputs = SimpleNamespace(logits=torch.nn.functional.one_hot(taught, 3).float() * 5)
    fit = teacher_fit([member(0), member(1)], [member(2)], data, outputs, "cpu")
    assert fit["images"] == 6
    assert fit["teacher_accuracy"] == pytest.approx(4 / 6)
    # shift 0 predicts 0,1,2,0,1,2; shift 1: 1,2,0,1,2,0; shift 2: 2,0,1,2,0,1
    assert fit["kd"]["agreement"]["values"] == pytest.approx([4 / 6, 1 / 6])
    assert fit["kd"]["accuracy"]["values"] == pytest.approx([5 / 6, 1 / 6])
    assert fit["no_kd"]["agreement"]["values"] == pytest.approx([1 / 6])
    assert teacher_fit([member(0)], [], data, outputs, "cpu")["no_kd"] is None


def card_metrics(**change) -> dict:
    """metrics.json of a Fashion-MNIST export, by hand."""
    m = {
        "study": "demo", "trial": 7, "pick": "knee", "dataset": "fashion-mnist",
        "test_accuracy": 0.9100, "params": 40_000, "flops": 6e6, "latency_ms": 1.5, "epochs": 3,
        "retrain_seconds": 600.0, "train_images": 60_000, "test_images": 10_000,
        "input_shape": [1, 28, 28], "input_scale": "8-bit pixels ÷ 255",
        "normalisation": {"mean": [0.286], "std": [0.353], "inside": True},
        "augment": {"mode": "none"},
        "kd": {"loss": "kd", "temperature": 4.0, "alpha": 0.9},
        "threads": 1, "device": "cpu",
        "teacher": {"test_accuracy": 0.9282, "params": 308_074, "flops": 9e7, "latency_ms": 3.0,
                    "path": "/x/teacher.pt2"},
        "no_kd": {"test_accuracy": 0.9000, "retrain_seconds": 500.0},
        "search": {"val_accuracy": 0.88, "epochs": 3, "train_subset": 10_000,
                   "finished_trials": 40, "complete_trials": 10,
                   "front": [{"trial": 2, "val_accuracy": 0.85, "params": 27_000}]},
    }  # fmt: skip
    return {**m, **change}


def test_card_names_the_teacher_that_taught_and_what_that_does_to_the_margin():
    from autostudent.card import render_card

    by = {"path": "students/assistant", "sha256": "ab", "format": "torchscript", "input": "unit",
          "params": 80_000, "flops": 2e7, "latency_ms": 1.0, "test_accuracy": 0.9350}  # fmt: skip
    base = {"family": "resnet", "params": 38_000, "kd": {"loss": "kd"}, "mean": 0.905,
            "sd": 0.001, "seeds": [0, 1, 2]}  # fmt: skip
    vs = {"baseline": base, "margin_pt": 0.5, "unsized": []}
    card = render_card(card_metrics(taught_by=by, versus_baseline=vs))
    assert (
        "distilled from `students/assistant` (80,000 params, 93.50 % on the test split, fed unit "
        "images), given with `--teach-with` instead of the study's teacher `teacher.pt2` "
        "(308,074 params)" in card
    )
    assert "| the teacher that taught it (`--teach-with`) | 93.50 % | 80,000 |" in card
    assert "the margin includes the difference of teachers" in card
    assert "1/7.7 of the teacher's parameters" in card  # the study's teacher, not the assistant
    plain = render_card(card_metrics(versus_baseline=vs))
    assert "--teach-with" not in plain and "distilled from the teacher `teacher.pt2`" in plain
    no_kd_base = render_card(card_metrics(taught_by=by, versus_baseline={
        **vs, "baseline": {**base, "kd": None}}))  # fmt: skip
    assert "difference of teachers" not in no_kd_base  # a no-KD baseline had no teacher


def test_card_says_how_far_a_missed_target_is_and_what_bears_on_it():
    from autostudent.card import render_card

    card = render_card(card_metrics())
    tenth, published = [line for line in card.splitlines() if line.startswith("- **")]
    # 1/10 of 308,074 = 30,807 params at ≥ 92.32 %: 9,193 params over and 1.32 pt short
    assert "≤ 30,807 params" in tenth and "**not met**" in tenth
    assert "9,193 params over" in tenth and "1.32 pt short" in tenth
    assert "trial 2 (27,000" in tenth  # the front student that would fit
    assert "retrained 3 epochs (KD added +1.00 pt)" in tenth and "40 finished trials" in tenth
    assert "≤ 50,000 params" in published and "1.50 pt short" in published
    assert "params over" not in published
    assert "**KD gain: +1.00 pt**" in card

    met = render_card(card_metrics(test_accuracy=0.93, params=30_000))
    assert met.count("**met**") == 2
    other = render_card(
        card_metrics(dataset="digits", no_kd={"test_accuracy": None, "skipped": "--no-baseline"})
    )
    assert "50,000" not in other and "--no-baseline" in other  # Fashion-MNIST's own target
    assert "nothing left to teach" not in card + other


def test_card_says_when_the_student_alone_reaches_the_teacher():
    from autostudent.card import render_card

    # measured: trial 37 (17,552) at 15 epochs, 93.02 % without KD against the teacher's 92.82 %
    card = render_card(
        card_metrics(test_accuracy=0.9235, no_kd={"test_accuracy": 0.9302, "retrain_seconds": 9.0})
    )
    assert "**The teacher has nothing left to teach this student" in card
    assert "without KD it reaches 93.02 %, the teacher 92.82 %" in card
    over = {
        "seeds": [0, 1],
        "kd": {"values": [0.92, 0.92], "mean": 0.92, "sd": 0.0},
        "no_kd": {"values": [0.929, 0.9286], "mean": 0.9288, "sd": 0.0003},
        "kd_gain": {"values": [-0.009, -0.0086], "mean": -0.0088, "sd": 0.0003},
    }
    card = render_card(
        card_metrics(
            seeds=over, test_accuracy=0.92, test_accuracy_mean=0.92, test_accuracy_sd=0.0,
            kd_gain=over["kd_gain"], no_kd={"test_accuracy": 0.929, "retrain_seconds": 9.0},
        )
    )  # fmt: skip
    assert "reaches 92.88 %, mean of 2 seeds, the teacher 92.82 %" in card


def test_card_over_seeds_holds_the_mean_to_the_targets_and_says_how_it_was_chosen():
    from autostudent.card import render_card

    over = {
        "seeds": [0, 1, 2],
        "kd": {"values": [0.9290, 0.9200, 0.9170], "mean": 0.9220, "sd": 0.0062},
        "no_kd": {"values": [0.9200, 0.9210, 0.9190], "mean": 0.9200, "sd": 0.0010},
        "kd_gain": {"values": [0.009, 0.005, 0.004], "mean": 0.006, "sd": 0.0026},
    }
    m = card_metrics(
        test_accuracy=0.9290, params=30_000, seeds=over, test_accuracy_mean=0.9220,
        test_accuracy_sd=0.0062, kd_gain=over["kd_gain"],
        kd_gap_closed=gap_closed(over["kd_gain"], over["no_kd"], 0.9282),
        shipped={"rule": "the trial's own architecture retrained at the first seed",
                 "chosen_by": "--trial 7", "trial": 7, "arch_seed": 11, "seed": 0,
                 "epochs": 3, "seeds": 3, "family": 1},
    )  # fmt: skip
    card = render_card(m)
    # the written seed (92.90 %) would meet 1/10 within 0.5 pt (≥ 92.32 %); the mean does not
    tenth = next(line for line in card.splitlines() if line.startswith("- **1/10"))
    assert "**not met**" in tenth and "0.12 pt short, mean of 3 seeds" in tenth
    assert "KD added +0.60 ± 0.26 pt" in tenth
    assert "**KD gain: +0.60 ± 0.26 pt**" in card
    # +0.60 pt of the no-KD mean's 0.82 pt below the teacher (92.82 - 92.00)
    assert "KD closes **0.73** of the no-KD student's 0.82 pt gap to the teacher." in card
    assert "with KD 92.20 ± 0.62 %, without KD 92.00 ± 0.10 %" in card
    assert "(`--trial 7`)" in card and "Trial 7 was named" in card
    assert "seed 0, arch seed 11" in card and "trained 3 seeds" in card
    assert "| 0 | 92.90 % | 92.00 % | yes |" in card and "| 1 | 92.00 % | 92.10 % |  |" in card


def test_gap_closed_is_the_mean_gain_over_the_no_kd_means_gap_to_the_teacher():
    gain, no_kd = {"mean": 0.005}, {"mean": 0.92}
    assert gap_closed(gain, no_kd, 0.94) == pytest.approx({"share": 0.25, "gap_pt": 2.0})
    assert gap_closed(gain, {"mean": 0.94}, 0.94) is None  # no gap: nothing to close
    assert gap_closed(None, None, 0.94) is None  # --no-baseline


def test_card_ranks_rerank_candidates_on_their_mean_over_seeds():
    from autostudent.card import render_card

    rerank = {
        "k": 2, "rule": "max-accuracy-under:30807", "size": "params", "epochs": 5, "seed": 0,
        "seeds": [0, 1, 2], "train_images": 54_000, "val_images": 6_000, "chosen": 25,
        "candidates": [
            {"trial": 1, "params": 27_410, "search_val_accuracy": 0.865, "val_accuracy": 0.926,
             "val_accuracies": [0.929, 0.925, 0.924], "retrain_seconds": 1200.0},
            {"trial": 25, "params": 16_895, "search_val_accuracy": 0.8747, "val_accuracy": 0.927,
             "val_accuracies": [0.927, 0.926, 0.928], "retrain_seconds": 1000.0},
        ],
    }  # fmt: skip
    shipped = {"rule": "the trial's own architecture retrained at the first seed", "trial": 25,
               "chosen_by": "--pick max-accuracy-under:30807 --rerank 2", "arch_seed": 3,
               "seed": 0, "epochs": 5, "seeds": 3, "family": 1}  # fmt: skip
    card = render_card(card_metrics(trial=25, rerank=rerank, shipped=shipped))
    assert "seeds 0-2, its own KD settings" in card and "the best mean is exported" in card
    assert "| search's accuracy | validation, mean of 3, 5 epochs |" in card
    assert "| 2 | 25 **(exported)** | 16,895 | 87.47 % | 92.70 ± 0.10 % |" in card
    assert "| 1 | 1 | 27,410 | 86.50 % | 92.60 ± 0.26 % |" in card
    old = [{k: v for k, v in c.items() if k != "val_accuracies"} for c in rerank["candidates"]]
    one = {k: v for k, v in rerank.items() if k != "seeds"}  # before --rerank-seeds
    one["candidates"] = old
    card = render_card(card_metrics(trial=25, rerank=one, shipped=shipped))
    assert "seed 0, its own KD settings" in card and "the best one is exported" in card
    assert "| validation, 5 epochs |" in card
