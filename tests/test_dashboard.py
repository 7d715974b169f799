"""The dashboard: pure view functions, then a real study (real Ray search on digits) looked at
in headless Chromium as a person would — the static report and the live view."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import optuna
import pytest
from optuna.trial import TrialState, create_trial

from autostudent import study as studydb
from autostudent.dashboard import VIEWS, StudySource, figures, load_study_data, render_report
from autostudent.dashboard._architecture import architecture_panels, layered_layout
from autostudent.dashboard._data import describe_arch, front_mask, trials_table
from autostudent.spaces import load_space

CHROMIUM = any(os.path.exists(p) for p in ("/usr/bin/chromium", "/usr/bin/chromium-browser"))
needs_browser = pytest.mark.skipif(not CHROMIUM, reason="needs Debian's chromium (.ci/setup)")


# --- pure parts ------------------------------------------------------------------------------


def nago_spec(seed: int = 3) -> dict:
    space = load_space("nago", {"top_nodes": 5, "mid_nodes": 3, "bottom_nodes": 4, "width": 8})
    point = {name: dist.low for name, dist in space.distributions().items()}
    point.update({"top_p": 0.6, "mid_p": 0.7, "bottom_p": 0.5})
    return space.build_spec(point, seed, in_channels=1, num_classes=10, input_size=28)


def test_layered_layout_reads_left_to_right():
    spec = nago_spec()
    for graph in [spec["top"], *spec["cells"], *spec["cells"][0]["units"]]:
        position = layered_layout(graph["nodes"], graph["edges"])
        assert all(position[u][0] < position[v][0] for u, v in graph["edges"])
        assert len(set(position)) == graph["nodes"]  # no two nodes drawn on top of each other


def test_architecture_draws_every_level_of_the_spec():
    spec = nago_spec()
    panels = architecture_panels(spec)
    assert len(panels) == 3
    top = panels[0][1]
    nodes = next(trace for trace in top if trace.mode == "markers+text" and trace.hovertext)
    assert len(nodes.x) == spec["top"]["nodes"]
    assert all("ch" in h for h in nodes.hovertext)  # every cell says its stage and width
    assert describe_arch(spec).startswith("nago · cells ")
    ops = sum(u["nodes"] for c in spec["cells"] for u in c["units"])
    assert f"{ops} ops" in describe_arch(spec)


def synthetic_trials() -> list[optuna.trial.FrozenTrial]:
    """Hand-made trials: a known front (0, 2), one dominated (1), one pruned, one failed."""
    dist = {"x": optuna.distributions.FloatDistribution(0, 1)}

    def trial(number, state, acc, params, **attrs):
        t = create_trial(
            state=state,
            params={"x": 0.5},
            distributions=dist,
            values=[acc, params] if state == TrialState.COMPLETE else None,
            user_attrs={
                "val_accuracy": acc,
                "params": params,
                "flops": params * 300,
                "latency_ms": params / 1e4,
                "epochs": attrs.pop("epochs", 3),
                "max_epochs": 3,
                "curve": [acc],
                **attrs,
            },
        )
        t.number = number
        return t

    return [
        trial(0, TrialState.COMPLETE, 0.80, 10_000),
        trial(1, TrialState.COMPLETE, 0.79, 20_000),
        trial(2, TrialState.COMPLETE, 0.85, 40_000),
        trial(3, TrialState.PRUNED, 0.60, 5_000, epochs=1),
        trial(4, TrialState.FAIL, None, 200_000, failure="params 200,000 over the cap 100,000"),
        trial(5, TrialState.FAIL, None, 30_000, failure="ValueError: <bad>", traceback=TRACE),
    ]


TRACE = """Traceback (most recent call last):
  File "/w/autostudent/worker.py", line 34, in train_candidate
    run_trial(
  File "/w/autostudent/trial.py", line 199, in run_trial
    raise ValueError("<bad>")
ValueError: <bad>
"""


def test_front_mask_is_the_non_dominated_complete_trials():
    table = trials_table(synthetic_trials())
    assert list(table.loc[front_mask(table, "params"), "number"]) == [0, 2]
    # on another size axis the front is recomputed, never taken from pruned or failed trials
    assert set(table.loc[front_mask(table, "latency_ms"), "number"]) <= {0, 1, 2}


def test_pareto_figure_tells_states_apart_and_switches_axes(tmp_path):
    study = optuna.create_study(
        storage=f"sqlite:///{tmp_path / 's.db'}",
        study_name="s",
        directions=["maximize", "minimize"],
    )
    for t in synthetic_trials():
        study.add_trial(t)
    study.set_user_attr("objectives", ["accuracy", "params"])
    study.set_user_attr("hv_reference", {"params": 100_000})
    study.set_user_attr(
        "teacher", {"params": 300_000, "val_accuracy": 0.9, "flops": 9e7, "latency_ms": 2.0}
    )
    study.set_user_attr("config", {"caps": {"max_params": 100_000}})
    data = load_study_data(f"sqlite:///{tmp_path / 's.db'}", "s")
    fig = dict((v.key, f) for v, _, f in figures([data]))["pareto"]
    shown = [t for t in fig.data if t.visible is True]
    by_name = {t.name: t for t in shown}
    assert list(by_name["Pareto front"].customdata) == [0, 2]
    assert list(by_name["dominated"].customdata) == [1]
    assert list(by_name["pruned (low fidelity)"].customdata) == [3]
    assert list(by_name["failed"].customdata) == [4, 5]  # size known, accuracy not
    # a failed trial's hover says why, and where an unexpected error happened
    cap, bug = by_name["failed"].hovertext
    assert "failed: params 200,000 over the cap 100,000" in cap and "File" not in cap
    assert "failed: ValueError: &lt;bad&gt;<br>" in bug  # escaped: plotly reads HTML
    assert "File &quot;/w/autostudent/trial.py&quot;, line 199, in run_trial<br>" in bug
    assert "raise ValueError(&quot;&lt;bad&gt;&quot;)<br>" in bug and "Traceback" not in bug
    assert by_name["teacher"].x == (300_000,)
    assert fig.layout.xaxis2.type == "log"
    buttons = fig.layout.updatemenus[0].buttons
    assert [b.label for b in buttons] == ["parameters", "FLOPs per image", "latency (ms, batch 1)"]
    for button in buttons:  # each button shows one axis' traces, none of the others'
        visible = button.args[0]["visible"]
        assert len(visible) == len(fig.data) and 0 < sum(visible) < len(fig.data)
    # the hypervolume history ends at the study's own hypervolume
    assert data.hv_history["hypervolume"].iloc[-1] == pytest.approx(
        studydb.study_hypervolume(studydb.load(f"sqlite:///{tmp_path / 's.db'}", "s"))
    )
    assert data.hv_history["hypervolume"].is_monotonic_increasing


# --- a real study, looked at in a browser -----------------------------------------------------


@pytest.fixture(scope="module")
def demo_study(tmp_path_factory, digits_study) -> tuple[str, str]:
    """The session's real digits study (6 NAGO students, 2 epochs, two Ray workers), copied,
    with final-fidelity records for its front and a baseline family beside it (the records'
    shape is the one ``autostudent baselines`` stores; tests/test_baselines.py makes real ones)."""
    copy = tmp_path_factory.mktemp("dash") / "study.db"
    shutil.copyfile(digits_study[0], copy)
    url, name = f"sqlite:///{copy}", digits_study[1]
    add_final_runs(studydb.load(url, name))
    return url, name


def add_final_runs(study) -> None:
    """Each front student retrained at 2 seeds (KD: 0.90 + 0.01·i, no KD 0.88), and a resnet8
    baseline of 90 % of its size (0.89 with KD, 0.87 without): margins +1.00, +2.00, … pt."""
    from autostudent.final_runs import record

    recipe = {"epochs": 5, "batch_size": 64, "lr": 0.05, "weight_decay": 5e-4, "augment": "none"}
    kd = {"loss": "kd", "temperature": 4.0, "alpha": 0.9}
    for i, row in enumerate(studydb.pareto_rows(study)):
        params = row["params"]
        for seed in (0, 1):
            for role, run_name, size, acc_kd, acc_plain in (
                ("searched", f"trial {row['trial']}", params, 0.90 + 0.01 * i, 0.88),
                ("baseline", "resnet8", int(0.9 * params), 0.89, 0.87),
            ):
                for settings, acc in ((kd, acc_kd), (None, acc_plain)):
                    key = f"{role}-{run_name}-{size}-{settings is not None}-{seed}".replace(" ", "")
                    record(
                        study,
                        {
                            "key": key,
                            "role": role,
                            "name": run_name,
                            "trial": row["trial"] if role == "searched" else None,
                            "family": None if role == "searched" else run_name,
                            "params": size,
                            "flops": 1000,
                            "kd": settings,
                            "seed": seed,
                            "recipe": recipe,
                            "test_accuracy": acc + 0.002 * seed,
                        },
                        None,
                    )


def not_blank(png: Path) -> None:
    from PIL import Image

    image = np.asarray(Image.open(png).convert("L"), dtype=float)
    assert image.std() > 20, "the screenshot is (nearly) one colour"
    assert len(np.unique(image)) > 50


@needs_browser
@pytest.mark.slow  # the session's digits search
def test_report_renders_every_view_in_chromium(cli, demo_study, tmp_path):
    from autostudent.dashboard._browser import browser_page, wait_for_figures

    url, name = demo_study
    out, png = tmp_path / "report.html", tmp_path / "report.png"
    code, _, stderr = cli(
        "dashboard", "--storage", url, "--study", name, "--out", str(out), "--png", str(png)
    )
    assert code == 0, stderr
    html = out.read_text()
    assert "<script" in html and "<script src" not in html  # plotly.js inlined: opens offline
    not_blank(png)
    with browser_page() as page:
        page.route(
            "**/*",
            lambda route: (
                route.abort() if not route.request.url.startswith("file:") else route.continue_()
            ),
        )  # offline: no network at all
        page.goto(out.as_uri())
        shown = wait_for_figures(page, len(VIEWS))
        header = page.inner_text("header")
        front_text = page.inner_text("[data-view='front']")
    views = {f["view"]: f for f in shown}
    assert set(views) == {v.key for v in VIEWS}
    for key, fig in views.items():
        assert fig["traces"] > 0 and fig["points"] > 0, f"view {key} drew nothing: {fig}"
        assert fig["height"] > 150
    assert views["front"]["points"] >= 1
    assert views["curves"]["points"] >= 6  # every trial's curve
    assert "6 complete" in header and "0 sampler fallbacks" in header
    n_val = studydb.summary(studydb.load(url, name))["val_images"]
    assert f"val on {n_val:,} images (1 image = {100 / n_val:.2f} pt)" in header
    # the front beside the hand-designed baselines: the family (KD and no KD) and the retrained
    # students, each with its error bar; the front table gives each student's margin
    front = len(studydb.pareto_rows(studydb.load(url, name)))
    assert views["baselines"]["traces"] == 4 and views["baselines"]["points"] == 4 * front
    assert "+1.00 pt" in front_text


def test_baselines_view_draws_each_recipe_as_its_own_line(tmp_path, digits_study):
    """Runs of another recipe (an export's, e.g. `export --arch` with `--augment online`) are
    not joined to the same family's runs of `baselines`' recipe: each recipe is its own line,
    named in the legend, in its own grey, and each point's hover says its recipe."""
    from autostudent.final_runs import record

    copy = tmp_path / "study.db"
    shutil.copyfile(digits_study[0], copy)
    url, name = f"sqlite:///{copy}", digits_study[1]
    study = studydb.load(url, name)
    add_final_runs(study)
    recipe = {"epochs": 15, "batch_size": 64, "lr": 0.05, "weight_decay": 5e-4,
              "augment": "online"}  # fmt: skip
    run = {"key": "baseline-resnet8-online", "role": "baseline", "name": "resnet8",
           "trial": None, "family": "resnet8", "params": 3000, "flops": 1000, "kd": None,
           "seed": 0, "recipe": recipe, "test_accuracy": 0.9}  # fmt: skip
    record(study, run, None)
    fig = dict((v.key, f) for v, _, f in figures([load_study_data(url, name)]))["baselines"]
    lines = {t.name: t for t in fig.data}
    online = lines["resnet8 (15 epochs, augment online) (no KD)"]
    assert list(online.x) == [3000] and list(online.y) == [0.9]
    assert "15 epochs, augment online)" in online.hovertext[0]
    plain = lines["resnet8 (5 epochs)"]  # the study's own baselines, KD and no KD
    assert 3000 not in plain.x and lines["resnet8 (5 epochs) (no KD)"].x == plain.x
    assert online.line.color != plain.line.color
    assert "searched (5 epochs)" in lines and not any(
        "several recipes" in (a.text or "") for a in fig.layout.annotations
    )


def test_baselines_view_without_runs_says_how_to_make_them(tmp_path, digits_study):
    copy = tmp_path / "study.db"
    shutil.copyfile(digits_study[0], copy)
    data = load_study_data(f"sqlite:///{copy}", digits_study[1])
    fig = dict((v.key, f) for v, _, f in figures([data]))["baselines"]
    assert not fig.data
    assert "autostudent baselines" in fig.layout.annotations[0].text


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@needs_browser
@pytest.mark.slow  # the session's digits search
def test_live_view_shows_a_trial_added_while_it_is_open(demo_study):
    from autostudent.dashboard._browser import browser_page, wait_for_figures

    url, name = demo_study
    port = free_port()
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "autostudent",
            "dashboard",
            "--storage",
            url,
            "--study",
            name,
            "--serve",
            "--port",
            str(port),
            "--refresh",
            "0.5",  # the CLI's minimum: ticks faster than a redraw on any machine
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        with browser_page() as page:
            for _ in range(60):  # the server imports Dash and loads the study first
                with contextlib.suppress(Exception):
                    page.goto(f"http://127.0.0.1:{port}/")
                    break
                time.sleep(0.5)
            shown = wait_for_figures(page, len(VIEWS))
            assert {f["view"] for f in shown} <= {"", *[v.key for v in VIEWS]}
            assert len(shown) == len(VIEWS)
            page.wait_for_function(
                "document.querySelector('#facts').innerText.includes('6 complete')"
            )
            before = page.evaluate(
                "document.querySelector('.js-plotly-plot')._fullData"
                ".filter(t => t.visible === true).length"
            )

            # a trial finishes while the page is open: the best one again, 10x smaller
            study = studydb.load(url, name)
            best = max(study.get_trials(states=(TrialState.COMPLETE,)), key=lambda t: t.values[0])
            attrs = {**best.user_attrs, "params": best.user_attrs["params"] // 10}
            study.add_trial(
                create_trial(
                    params=best.params,
                    distributions=best.distributions,
                    values=[best.values[0], attrs["params"]],
                    user_attrs=attrs,
                )
            )
            page.wait_for_function(
                "document.querySelector('#facts').innerText.includes('7 complete')", timeout=60_000
            )
            page.wait_for_function(
                """() => { const t = document.querySelector('.js-plotly-plot')._fullData
                   .find(t => t.visible === true && t.name === 'Pareto front');
                   return t && Array.from(t.customdata).includes(6); }""",
                timeout=60_000,
            )
            assert before > 0

            # a click on the new student draws its architecture
            x, y = page.evaluate(
                """() => { const gd = document.querySelector('.js-plotly-plot');
                   const t = gd._fullData.find(d => d.visible && d.name === 'Pareto front');
                   const i = Array.from(t.customdata).indexOf(6);
                   const xa = gd._fullLayout.xaxis, ya = gd._fullLayout.yaxis;
                   const box = gd.getBoundingClientRect();
                   return [box.left + xa._offset + xa.c2p(t.x[i]),
                           box.top + ya._offset + ya.c2p(t.y[i])]; }"""
            )
            page.mouse.click(x, y)
            page.wait_for_function(
                """() => Array.from(document.querySelectorAll('.js-plotly-plot')).some(gd =>
                   (gd.layout.title.text || '').startsWith('Architecture of trial 6 '))""",
                timeout=60_000,
            )
    finally:
        server.terminate()
        _, err = server.communicate(timeout=20)
    assert "Traceback" not in err, err


@pytest.mark.slow  # the session's digits search
def test_dashboard_bad_input_exits_2_and_writes_nothing(cli, demo_study, tmp_path):
    url, name = demo_study
    out = tmp_path / "r.html"
    cases = [
        (["--storage", url, "--study", "nope", "--out", str(out)], "--study"),
        (["--storage", url, "--study", name], "--out/--serve"),
        (["--storage", url, "--study", name, "--out", str(out), "--serve"], "--out/--serve"),
        (["--storage", url, "--study", name, "--out", str(tmp_path / "r.txt")], "--out"),
        (["--storage", url, "--storage", url, "--study", name, "--out", str(out)], "--storage"),
    ]
    for args, field in cases:
        code, _, err = cli("dashboard", *args)
        assert code == 2, (args, err)
        assert err.startswith("error: ") and field in err and err.count("\n") == 1, err
    assert not list(tmp_path.iterdir())


@pytest.mark.slow  # the session's digits search
def test_static_report_overlays_studies(demo_study):
    url, name = demo_study
    data = StudySource(url, name).load()
    html = render_report([data, data])
    assert html.count("data-view='pareto'") == 1  # one overlaid front
    assert html.count("data-view='curves'") == 2  # per-study views once per study
