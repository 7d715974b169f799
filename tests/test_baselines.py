"""``autostudent baselines``: hand-designed students beside the front, trained like them, stored
in the study (resumable), read back as margins by ``status``."""

from __future__ import annotations

import json
import shutil

import pytest

from autostudent.baselines import best_baseline, margin_by_trial, margins, parse_sizes
from autostudent.final_runs import groups


def _run(role, name, params, seed, acc, *, kd=True, trial=None, epochs=5):
    return {
        "key": f"{role}-{name}-{params}-{kd}-{seed}-{epochs}",
        "role": role,
        "name": name,
        "trial": trial,
        "family": None if role == "searched" else name,
        "params": params,
        "flops": 1,
        "kd": {"loss": "kd", "temperature": 4.0, "alpha": 0.9} if kd else None,
        "seed": seed,
        "recipe": {"epochs": epochs, "batch_size": 64, "lr": 0.05, "weight_decay": 5e-4},
        "test_accuracy": acc,
    }


def test_margin_is_over_the_best_baseline_of_at_most_its_size_and_same_recipe():
    runs = [
        # trial 3: 20K params, KD 0.90/0.92, no KD 0.88/0.88
        _run("searched", "trial 3", 20_000, 0, 0.90, trial=3),
        _run("searched", "trial 3", 20_000, 1, 0.92, trial=3),
        _run("searched", "trial 3", 20_000, 0, 0.88, trial=3, kd=False),
        _run("searched", "trial 3", 20_000, 1, 0.88, trial=3, kd=False),
        # a baseline of 19K: no KD beats its KD runs, and counts
        _run("baseline", "resnet", 19_000, 0, 0.86),
        _run("baseline", "resnet", 19_000, 1, 0.86),
        _run("baseline", "resnet", 19_000, 0, 0.895, kd=False),
        _run("baseline", "resnet", 19_000, 1, 0.895, kd=False),
        # better, but larger than the student: not a fair comparison
        _run("baseline", "mobilenetv2", 21_000, 0, 0.95),
        # better, but another recipe (1 epoch): not comparable
        _run("baseline", "mobilenetv2", 10_000, 0, 0.97, epochs=1),
        # trial 4: smaller than every baseline
        _run("searched", "trial 4", 5_000, 0, 0.80, trial=4),
    ]
    by_trial = {m["trial"]: m for m in margins(runs)}
    m3 = by_trial[3]
    assert m3["mean"] == pytest.approx(0.91)
    assert m3["sd"] == pytest.approx(0.01414, abs=1e-4)
    assert m3["no_kd"]["mean"] == pytest.approx(0.88)
    assert (m3["baseline"]["family"], m3["baseline"]["kd"]) == ("resnet", False)
    assert m3["margin_pt"] == pytest.approx(1.5)
    assert by_trial[4]["baseline"] is None and by_trial[4]["margin_pt"] is None
    gs = groups(runs)
    assert best_baseline(gs, 9_000, runs[0]["recipe"]) is None


def test_status_margin_is_at_the_longest_recipe_with_a_baseline():
    """An export of trial 3 at 15 epochs, a recipe no baseline ran, keeps the 5-epoch margin in
    status; once a baseline runs at 15 epochs, that margin is shown."""
    runs = [
        _run("searched", "trial 3", 20_000, 0, 0.90, trial=3),
        _run("baseline", "resnet", 19_000, 0, 0.88),
        _run("searched", "trial 3", 20_000, 0, 0.93, trial=3, epochs=15),
        _run("searched", "trial 4", 5_000, 0, 0.80, trial=4),  # no baseline this small
    ]
    assert margin_by_trial(runs)[3] == pytest.approx(2.0)
    assert margin_by_trial(runs)[4] is None
    runs.append(_run("baseline", "resnet", 19_000, 0, 0.925, epochs=15))
    assert margin_by_trial(runs)[3] == pytest.approx(0.5)


def test_sizes_flag(user_error):
    assert parse_sizes("auto") is None
    assert parse_sizes("20_000,5000,5000") == [5000, 20000]
    user_error(lambda: parse_sizes("5k"), "--sizes", "5k")
    user_error(lambda: parse_sizes("0"), "--sizes")


@pytest.fixture
def study_copy(tmp_path, digits_study) -> tuple[str, str]:
    copy = tmp_path / "study.db"
    shutil.copyfile(digits_study[0], copy)
    return f"sqlite:///{copy}", digits_study[1]


@pytest.mark.slow
def test_baselines_run_store_resume_and_show_in_status(cli, study_copy, tmp_path):
    url, name = study_copy
    args = ["baselines", "--storage", url, "--study", name, "--families", "resnet8,mobilenetv2"]
    args += [
        "--sizes",
        "3000,6000",
        "--seeds",
        "1",
        "--epochs",
        "1",
        "--raw",
        str(tmp_path / "raw"),
    ]
    code, out, err = cli(*args, "--json")
    assert code == 0, err
    result = json.loads(out)
    # two families × two sizes × (KD, no KD), and every front student with and without KD
    families = {(b["family"], b["params"], b["kd"]) for b in result["baselines"]}
    assert {f for f, _, _ in families} == {"resnet8", "mobilenetv2"}
    assert all(b["params"] <= 6000 for b in result["baselines"])
    assert {kd for _, _, kd in families} == {True, False}
    assert result["kd"]["loss"] in ("kd", "dkd")
    assert result["margins"], "the front's students were retrained"
    for m in result["margins"]:
        assert m["no_kd"] is not None
        assert (m["baseline"] is None) == (m["params"] < min(p for _, p, _ in families))
    raw = sorted((tmp_path / "raw").glob("*.json"))
    assert len(raw) == result["planned"]
    assert all(0 <= json.loads(p.read_text())["test_accuracy"] <= 1 for p in raw)
    assert all(json.loads(p.read_text())["retrain_cpu_seconds"] > 0 for p in raw)
    from autostudent.provenance import code

    assert all(json.loads(p.read_text())["code"] == code() for p in raw)  # the code it ran on
    assert result["device"] == "cpu"  # where the study searched: no --device given
    assert all(json.loads(p.read_text())["device"] == "cpu" for p in raw)

    # nothing is run again
    code, out, err = cli(*args)
    assert code == 0, err
    assert f"{result['planned']} of {result['planned']} runs already stored" in out

    code, out, err = cli("status", "--storage", url, "--study", name, "--json")
    status = json.loads(out)
    assert len(status["baselines"]) == len(result["baselines"])
    margin = {m["trial"]: m["margin_pt"] for m in result["margins"]}
    for row in status["pareto"]:
        assert row["margin_over_baseline"] == pytest.approx(margin[row["trial"]])
    # the text status gives each front student's margin, as the dashboard's front table does
    code, out, err = cli("status", "--storage", url, "--study", name)
    assert code == 0, err
    for row in status["pareto"]:
        line = next(s for s in out.splitlines() if s.strip().startswith(f"trial {row['trial']:>4}"))
        m = row["margin_over_baseline"]
        assert line.endswith(f"vs hand-designed {'—' if m is None else f'{m:+.2f} pt'}"), line
    assert "resnet8" in out.split("vs hand-designed: ")[1]

    # export's card names the best baseline of at most the student's size, same recipe
    biggest = max(result["margins"], key=lambda m: m["params"])
    out = tmp_path / "export"
    code, _, err = cli(
        "export", "--storage", url, "--study", name, "--trial", str(biggest["trial"]),
        "--epochs", "1", "--out", str(out),
    )  # fmt: skip
    assert code == 0, err
    metrics = json.loads((out / "metrics.json").read_text())
    # its two retrains (KD, no KD; seed 0, 1 epoch) are the runs baselines made: not stored twice
    assert metrics["final_runs"] == {"stored": 0, "already_stored": 2}
    vs = metrics["versus_baseline"]
    if biggest["baseline"] is None:
        assert vs["baseline"] is None and "autostudent baselines" in vs["why"]
    else:
        assert vs["baseline"]["family"] == biggest["baseline"]["family"]
        expected = 100 * (metrics["test_accuracy"] - biggest["baseline"]["mean"])
        assert vs["margin_pt"] == pytest.approx(expected)
        # --sizes 3000,6000: a family whose member at the student's own size was not among
        # them is named, with the command that sizes it
        for u in vs["unsized"]:
            assert (u["family"], u["params"]) not in {(f, p) for f, p, _ in families}
            assert u["params"] <= biggest["params"]
            assert f"--sizes {biggest['params']}" in vs["size_them"]
            assert u["family"] in vs["size_them"]
        assert ("Not yet compared" in (out / "card.md").read_text()) == bool(vs["unsized"])
    assert "## Against hand-designed students" in (out / "card.md").read_text()


@pytest.mark.slow
def test_an_exports_retrains_are_kept_in_the_study_and_status_shows_its_margin(
    cli, study_copy, tmp_path
):
    """Round 4 exported a student, then sized the families to it: its margin (+1.07 pt) was in
    summary.json but not in status, which knew no final run of the student. An export with
    ``--augment mixup`` is kept at its recipe, and ``baselines --augment mixup`` trains the
    families at that recipe: the margin compares the two."""
    from autostudent import study as studydb
    from autostudent.final_runs import stored

    url, name = study_copy

    def status() -> dict:
        return json.loads(cli("status", "--storage", url, "--study", name, "--json")[1])

    row = max(status()["pareto"], key=lambda r: r["params"])
    out = tmp_path / "export"
    code, _, err = cli(
        "export", "--storage", url, "--study", name, "--trial", str(row["trial"]),
        "--epochs", "1", "--seeds", "2", "--augment", "mixup", "--out", str(out),
    )  # fmt: skip
    assert code == 0, err
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["final_runs"] == {"stored": 4, "already_stored": 0}
    runs = [r for r in stored(studydb.load(url, name)).values() if r["trial"] == row["trial"]]
    by = {(r["kd"] is not None, r["seed"]): r["test_accuracy"] for r in runs}
    seeds = metrics["seeds"]
    assert by == {
        **{(True, s): a for s, a in zip(seeds["seeds"], seeds["kd"]["values"], strict=True)},
        **{(False, s): a for s, a in zip(seeds["seeds"], seeds["no_kd"]["values"], strict=True)},
    }
    assert all(r["source"] == "export" and r["recipe"]["epochs"] == 1 for r in runs)
    assert all(r["recipe"]["augment"] == "mixup" for r in runs)
    mine = next(r for r in status()["pareto"] if r["trial"] == row["trial"])
    assert mine["margin_over_baseline"] is None  # no hand-designed student of its size yet

    code, _, err = cli(
        "baselines", "--storage", url, "--study", name, "--families", "resnet8",
        "--sizes", str(metrics["params"]), "--no-students", "--seeds", "2", "--epochs", "1",
    )  # fmt: skip
    assert code == 0, err
    mine = next(r for r in status()["pareto"] if r["trial"] == row["trial"])
    assert mine["margin_over_baseline"] is None  # the families ran without mixup: no margin
    code, _, err = cli(
        "baselines", "--storage", url, "--study", name, "--families", "resnet8",
        "--sizes", str(metrics["params"]), "--no-students", "--seeds", "2", "--epochs", "1",
        "--augment", "mixup",
    )  # fmt: skip
    assert code == 0, err
    mixup = [r for r in stored(studydb.load(url, name)).values() if r["role"] == "baseline"]
    assert sorted(r["recipe"]["augment"] for r in mixup) == ["mixup"] * 4 + ["none"] * 4
    best = max(
        (
            b
            for b in status()["baselines"]
            if b["params"] <= metrics["params"] and b["augment"] == "mixup"
        ),
        key=lambda b: b["test_accuracy_mean"],
    )
    mine = next(r for r in status()["pareto"] if r["trial"] == row["trial"])
    expected = 100 * (metrics["test_accuracy_mean"] - best["test_accuracy_mean"])
    assert mine["margin_over_baseline"] == pytest.approx(expected)


@pytest.mark.slow  # the session's digits search; two spawned workers
def test_your_own_family_runs_beside_the_front_in_worker_processes(cli, study_copy, tmp_path):
    """``--families user_families:tiny_cnn`` (tests/user_families.py, outside the package):
    sized, trained with KD and without in two spawned workers, stored, shown by status."""
    url, name = study_copy
    family = "user_families:tiny_cnn"
    code, out, err = cli(
        "baselines", "--storage", url, "--study", name, "--families", family, "--sizes", "2000",
        "--no-students", "--seeds", "1", "--epochs", "1", "--workers", "2", "--json",
    )  # fmt: skip
    assert code == 0, err
    result = json.loads(out)
    runs = {(b["family"], b["params"], b["kd"]) for b in result["baselines"]}
    assert runs == {(family, 1_984, True), (family, 1_984, False)}  # width 94: 21 × 94 + 10
    assert all(0 < b["test_accuracy_mean"] <= 1 for b in result["baselines"])
    code, out, err = cli("status", "--storage", url, "--study", name, "--json")
    assert {b["family"] for b in json.loads(out)["baselines"]} == {family}
    code, _, err = cli(
        "baselines", "--storage", url, "--study", name, "--families", "user_families:broken",
        "--sizes", "2000", "--no-students",
    )  # fmt: skip
    assert code == 2 and err.startswith("error: --families") and "width must be even" in err


def test_baselines_bad_input_exits_2_and_stores_nothing(cli, study_copy):
    url, name = study_copy
    code, _, err = cli("baselines", "--storage", url, "--study", name, "--families", "vgg")
    assert code == 2 and err.startswith("error: --families") and err.count("\n") == 1
    code, _, err = cli("baselines", "--storage", url, "--study", "nope")
    assert code == 2 and "nope" in err
    for augment in ("views", "blur"):
        code, _, err = cli("baselines", "--storage", url, "--study", name, "--augment", augment)
        assert code == 2 and err.startswith("error: --augment") and err.count("\n") == 1, err
    code, out, _ = cli("status", "--storage", url, "--study", name, "--json")
    assert json.loads(out)["baselines"] == []
    code, out, _ = cli("status", "--storage", url, "--study", name)
    assert code == 0 and "vs hand-designed" not in out  # nothing retrained: no column


@pytest.mark.slow  # one baseline of the session's digits search, 1 epoch
def test_baselines_device_a_gpu_not_here_is_one_line_and_cpu_runs_a_gpu_searched_study(
    cli, study_copy, tmp_path
):
    """--device names where the runs train, as export's does: a GPU torch does not see is one
    line before anything loads; a study searched on a GPU says so and names --device cpu, which
    then trains here (the record says where it ran)."""
    from autostudent import study as studydb
    from autostudent.final_runs import stored

    url, name = study_copy
    args = ("baselines", "--storage", url, "--study", name, "--families", "resnet8", "--sizes",
            "3000", "--seeds", "1", "--epochs", "1", "--no-students", "--json")  # fmt: skip
    for device in ("cuda:99", "tpu"):
        code, _, err = cli(*args, "--device", device)
        assert code == 2 and err.startswith("error: --device: ") and err.count("\n") == 1, err
    study = studydb.load(url, name)
    config = study.user_attrs["config"]
    gpu = {**config["resources"], "device": "cuda:99", "gpus_per_trial": 0.5}
    study.set_user_attr("config", {**config, "resources": gpu})
    code, _, err = cli(*args)
    assert code == 2 and err.count("\n") == 1, err
    assert "resources.device: 'cuda:99' asked for" in err and "--device cpu" in err
    assert stored(study) == {}  # nothing trained, nothing stored
    code, out, err = cli(*args, "--device", "cpu")
    assert code == 0, err
    result = json.loads(out)
    assert result["device"] == "cpu" and len(result["baselines"]) == 2  # KD and no KD
    assert {r["device"] for r in stored(studydb.load(url, name)).values()} == {"cpu"}


def test_the_students_at_the_target_fractions_and_their_baselines_run_first():
    from autostudent.baselines import pick_at_fraction, run_order
    from autostudent.final_runs import KD, Recipe, RunPlan

    front = [
        {"trial": 1, "params": 3_000, "accuracy": 0.80},
        {"trial": 2, "params": 7_000, "accuracy": 0.84},
        {"trial": 5, "params": 25_000, "accuracy": 0.90},
        {"trial": 7, "params": 28_000, "accuracy": 0.89},  # less accurate by the proxy
        {"trial": 9, "params": 90_000, "accuracy": 0.92},
    ]
    assert pick_at_fraction(front, 300_000, 10)["trial"] == 5
    assert pick_at_fraction(front, 300_000, 40)["trial"] == 2
    assert pick_at_fraction(front, 100_000, 40) is None
    recipe, kd = Recipe(5, 64, 0.05, 5e-4), KD("kd", 4.0, 0.9)
    plans = [
        RunPlan("searched", f"trial {r['trial']}", {}, r["params"], kd, seed, recipe, r["trial"])
        for r in front
        for seed in (0, 1)
    ] + [
        RunPlan(
            "baseline", "resnet", {}, r["params"] - 10, k, seed, recipe, target_params=r["params"]
        )
        for r in front
        for seed in (0, 1)
        for k in (kd, None)
    ]
    order = run_order(plans, [5, 2])
    first, rest = order[:12], order[12:]  # trials 2 and 5 and their baselines, both seeds
    assert {p.trial for p in first if p.role == "searched"} == {2, 5}
    assert {p.target_params for p in first if p.role == "baseline"} == {7_000, 25_000}
    assert [p.seed for p in first] == [0] * 6 + [1] * 6  # seed by seed within each part
    assert [p.seed for p in rest] == sorted(p.seed for p in rest)


def test_status_counts_how_trials_were_proposed_and_relaxed_rules(tmp_path):
    import optuna
    from optuna.trial import create_trial

    from autostudent.sampler import PROPOSAL_ATTR, RELAXED_ATTR
    from autostudent.study import summary

    study = optuna.create_study(
        storage=f"sqlite:///{tmp_path / 's.db'}", directions=["maximize", "minimize"]
    )
    for kind, relaxed in (("gap", None), ("gap", "gap"), ("ehvi", None), ("sobol", "repeats")):
        attrs = {PROPOSAL_ATTR: kind, **({RELAXED_ATTR: relaxed} if relaxed else {})}
        attrs |= {"val_accuracy": 0.5, "params": 1000}
        study.add_trial(create_trial(values=[0.5, 1000], user_attrs=attrs))
    s = summary(study)
    assert s["proposals"] == {"ehvi": 1, "gap": 2, "sobol": 1}
    assert s["relaxed"] == {"gap": 1, "repeats": 1}
    assert s["baselines"] == [] and all(r["margin_over_baseline"] is None for r in s["pareto"])


def test_a_run_whose_database_write_failed_is_kept_and_stored_at_the_next_start(tmp_path):
    import optuna

    from autostudent.final_runs import KD, Recipe, RunPlan, pending, record, recover, stored

    study = optuna.create_study(storage=f"sqlite:///{tmp_path / 's.db'}")
    recipe = Recipe(5, 64, 0.05, 5e-4)
    plans = [
        RunPlan("baseline", "resnet", {}, 1000, KD("kd", 4.0, 0.9), seed, recipe, None, 1000)
        for seed in (0, 1, 2)
    ]
    run = {"key": plans[0].key, "test_accuracy": 0.9, "seed": 0}

    class Unwritable:  # e.g. SQLite's "attempt to write a readonly database"
        def set_user_attr(self, key, value):
            raise RuntimeError("attempt to write a readonly database")

    raw = tmp_path / "raw"
    with pytest.raises(RuntimeError):
        record(Unwritable(), run, raw)
    assert json.loads((raw / f"{plans[0].key}.json").read_text()) == run  # written first
    (raw / f"{plans[1].key}.json").write_text("{not json")  # not a record: run again
    (raw / f"{plans[2].key}.json").write_text(json.dumps({**run, "key": "another"}))

    assert recover(study, plans, raw) == 1
    assert stored(study) == {plans[0].key: run}
    assert [p.key for p in pending(study, plans)] == [plans[1].key, plans[2].key]
    assert recover(study, plans, raw) == 0 and recover(study, plans, None) == 0


def test_a_student_the_families_were_not_sized_to_is_flagged_with_the_command_that_sizes_them():
    """Round 2's trial 1 (27,410 params) was exported when the families had been sized to the
    front only (up to 16,895): its margin over an 11K ResNet was +0.93 pt, over the 27K ones
    +0.17. The export now says which families were never sized to it."""
    from autostudent.baselines import unsized_families
    from autostudent.families import sized_spec, spec_params

    recipe = {"epochs": 5, "batch_size": 64, "lr": 0.05, "weight_decay": 5e-4, "augment": "none"}
    shape = {"in_channels": 1, "num_classes": 10, "input_size": 28}

    def run(family: str, target: int, **change) -> dict:
        spec = sized_spec(family, target, **shape)
        return {"role": "baseline", "family": family, "params": spec_params(spec),
                "spec": spec, "recipe": recipe, **change}  # fmt: skip

    front_only = [run(f, t) for f in ("resnet", "mobilenetv2") for t in (6_674, 16_895)]
    assert unsized_families(front_only, 16_895, recipe) == []
    assert unsized_families(front_only, 6_674, recipe) == []
    missing = unsized_families(front_only, 27_410, recipe)
    assert missing == [
        {"family": f, "params": spec_params(sized_spec(f, 27_410, **shape))}
        for f in ("mobilenetv2", "resnet")
    ]
    assert all(16_895 < m["params"] <= 27_410 for m in missing)
    sized = [*front_only, run("resnet", 27_410), run("mobilenetv2", 27_410)]
    assert unsized_families(sized, 27_410, recipe) == []
    other_recipe = [run("resnet", 27_410, recipe={**recipe, "epochs": 15})]
    assert unsized_families([*front_only, *other_recipe], 27_410, recipe)[1]["family"] == "resnet"
    assert unsized_families([], 27_410, recipe) == []  # no baselines at all: nothing to flag
    assert unsized_families(front_only, 100, recipe) == []  # no family has a member this small


def test_the_card_says_when_the_margin_is_over_smaller_students_only():
    from autostudent.card import render_card
    from tests.test_export import card_metrics

    vs = {
        "baseline": {"family": "resnet", "params": 11_302, "kd": True, "mean": 0.9140,
                     "sd": 0.0019, "seeds": [0, 1, 2]},
        "margin_pt": 0.93, "recipe": {}, "unsized": [
            {"family": "mobilenetv2", "params": 27_255}, {"family": "resnet", "params": 27_095}],
        "size_them": "autostudent baselines --storage sqlite:///s.db --study demo --families "
                     "mobilenetv2,resnet --sizes 27410 --no-students --epochs 5 --seeds 3",
    }  # fmt: skip
    card = render_card(card_metrics(params=27_410, versus_baseline=vs))
    assert "This student: **+0.93 pt** over it." in card
    assert "**Not yet compared with hand-designed students of its own size**" in card
    assert "mobilenetv2 at 27,255 and resnet at 27,095 params" in card
    assert "`autostudent baselines --storage sqlite:///s.db --study demo --families " in card
    sized = render_card(card_metrics(params=27_410, versus_baseline={**vs, "unsized": []}))
    assert "This student: **+0.93 pt**" in sized and "Not yet compared" not in sized
