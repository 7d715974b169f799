"""BoTorchSampler: an Optuna sampler whose proposals are quasi-random, then Bayesian."""

from __future__ import annotations

import math
import warnings

import numpy as np
import optuna
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import TrialState

import autostudent.sampler._history as history_module
import autostudent.sampler._sampler as sampler_module
from autostudent.sampler import (
    FALLBACK_ATTR,
    BoTorchSampler,
    KnownConstraints,
    ProposalFallbackWarning,
    TrialRecords,
)
from autostudent.sampler._encoding import CubeEncoding
from autostudent.sampler._settings import ProposalSettings

optuna.logging.set_verbosity(optuna.logging.WARNING)

SPACE = {
    "depth": IntDistribution(1, 8),
    "width": IntDistribution(8, 256, log=True),
    "k": IntDistribution(2, 8, step=2),
    "lr": FloatDistribution(1e-4, 1e-1, log=True),
    "alpha": FloatDistribution(0.0, 1.0),
    "loss": CategoricalDistribution(["kd", "mse", "dkd", "rkd", "wsl"]),
}


def student(params: dict) -> tuple[float, float]:
    """A cheap stand-in: accuracy to maximise, a log-spread parameter count to minimise."""
    size = params["depth"] * params["width"] ** 2 * (1 + params["k"])
    accuracy = (
        math.tanh(math.log(size) / 10)
        - 0.05 * (math.log10(params["lr"]) + 2) ** 2
        - 0.1 * (params["alpha"] - 0.6) ** 2
        + {"kd": 0.0, "mse": -0.05, "dkd": 0.03, "rkd": -0.1, "wsl": 0.02}[params["loss"]]
    )
    return accuracy, float(size)


def history(n: int, seed: int = 0, constrained: bool = False) -> list[optuna.trial.FrozenTrial]:
    """``n`` COMPLETE trials at random points of SPACE."""
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
    trials = []
    for _ in range(n):
        trial = study.ask(SPACE)
        accuracy, size = student(trial.params)
        trials.append(
            optuna.trial.create_trial(
                params=trial.params,
                distributions=SPACE,
                values=[accuracy, size],
                constraints={"size": size - 2e5} if constrained else None,
            )
        )
        study.tell(trial, state=TrialState.FAIL)
    return trials


def study_with(sampler: optuna.samplers.BaseSampler, trials: list) -> optuna.Study:
    study = optuna.create_study(directions=["maximize", "minimize"], sampler=sampler)
    for trial in trials:
        study.add_trial(trial)
    return study


@pytest.fixture
def no_fallback():
    """The Bayesian path must really run: a silent fallback to Sobol would pass most tests."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", ProposalFallbackWarning)
        yield


@pytest.fixture
def spy(monkeypatch):
    """Records the History given to every BoTorch proposal."""
    seen: list[history_module.History] = []
    propose = sampler_module.propose

    def recording(history, *args, **kwargs):
        seen.append(history)
        return propose(history, *args, **kwargs)

    monkeypatch.setattr(sampler_module, "propose", recording)
    return seen


@pytest.mark.slow
def test_multi_objective_study_end_to_end(no_fallback, spy):
    sampler = BoTorchSampler(seed=0, n_startup_trials=5)
    assert isinstance(sampler, optuna.samplers.BaseSampler)
    study = optuna.create_study(directions=["maximize", "minimize"], sampler=sampler)

    def objective(trial: optuna.Trial) -> tuple[float, float]:
        params = {
            "depth": trial.suggest_int("depth", 1, 8),
            "width": trial.suggest_int("width", 8, 256, log=True),
            "k": trial.suggest_int("k", 2, 8, step=2),
            "lr": trial.suggest_float("lr", 1e-4, 1e-1, log=True),
            "alpha": trial.suggest_float("alpha", 0.0, 1.0),
            "loss": trial.suggest_categorical("loss", ["kd", "mse", "dkd", "rkd", "wsl"]),
        }
        return student(params)

    study.optimize(objective, n_trials=12)
    assert len(spy) == 7  # every trial after the startup was a BoTorch proposal
    assert all(t.state == TrialState.COMPLETE for t in study.trials)
    for trial in study.trials:
        for name, value in trial.params.items():
            distribution = trial.distributions[name]
            assert distribution._contains(distribution.to_internal_repr(value)), (name, value)


def test_startup_is_a_scrambled_sobol_sequence():
    def first(seed: int, n: int = 16) -> list[dict]:
        study = optuna.create_study(sampler=BoTorchSampler(seed=seed, n_startup_trials=n))
        out = []
        for _ in range(n):
            trial = study.ask()
            out.append(
                {
                    "x": trial.suggest_float("x", 0.0, 1.0),
                    "y": trial.suggest_float("y", 0.0, 1.0),
                    "c": trial.suggest_categorical("c", ["a", "b", "c", "d"]),
                }
            )
            study.tell(trial, 0.0)
        return out

    points = first(seed=1)
    # A (0, m, 1)-net in every coordinate: 16 points put exactly one in each 1/16 bin (random
    # points would do so with probability 16!/16^16 ~ 1e-6), and each of 4 choices 4 times.
    for name in ("x", "y"):
        bins = sorted(int(p[name] * 16) for p in points)
        assert bins == list(range(16)), name
    assert sorted(p["c"] for p in points) == sorted(["a", "b", "c", "d"] * 4)
    assert first(seed=1) == points
    assert first(seed=2) != points


def test_proposal_is_deterministic_for_seed_and_history(no_fallback):
    trials = history(14)
    asked = []
    for _ in range(2):
        study = study_with(BoTorchSampler(seed=3, n_startup_trials=10), trials)
        asked.append(study.ask(SPACE).params)
    assert asked[0] == asked[1]
    other = study_with(BoTorchSampler(seed=4, n_startup_trials=10), trials).ask(SPACE).params
    assert other != asked[0]


def test_running_trial_is_a_pending_point(no_fallback, spy):
    study = study_with(BoTorchSampler(seed=0, n_startup_trials=10), history(14))
    first = study.ask(SPACE)  # stays RUNNING, as on another worker
    second = study.ask(SPACE)
    cube = CubeEncoding(SPACE)
    assert spy[0].X_pending is None
    np.testing.assert_allclose(spy[1].X_pending, [cube.encode(first.params)])
    distance = np.abs(cube.encode(first.params) - cube.encode(second.params)).max()
    assert distance > 0.01


@pytest.mark.slow
def test_constraints_steer_proposals_to_the_feasible_half(no_fallback):
    # The objective ignores x, so only the constraint model can tell that x > 0.5 is wasted.
    startup, later = 8, 8
    study = optuna.create_study(
        direction="maximize", sampler=BoTorchSampler(seed=0, n_startup_trials=startup)
    )
    for _ in range(startup + later):
        trial = study.ask()
        x, y = trial.suggest_float("x", 0.0, 1.0), trial.suggest_float("y", 0.0, 1.0)
        trial.set_constraint("x_cap", x - 0.5)
        study.tell(trial, 1.0 - (y - 0.7) ** 2)
    feasible = [t.constraints["x_cap"] <= 0 for t in study.trials]
    startup_fraction = np.mean(feasible[:startup])
    later_fraction = np.mean(feasible[startup:])
    assert 0.25 <= startup_fraction <= 0.75
    assert later_fraction >= 0.8
    assert later_fraction > startup_fraction
    best = max((t for t in study.trials if t.constraints["x_cap"] <= 0), key=lambda t: t.value)
    assert best.value > 0.99  # and the feasible proposals still optimise


def test_numerical_error_falls_back_to_the_sobol_point_and_is_stored(monkeypatch):
    from linear_operator.utils.errors import NotPSDError

    def broken(*args, **kwargs):
        raise NotPSDError("matrix not positive definite")

    monkeypatch.setattr("botorch.fit.fit_gpytorch_mll", broken)
    sampler = BoTorchSampler(seed=5, n_startup_trials=10)
    study = study_with(sampler, history(12))
    with pytest.warns(ProposalFallbackWarning, match="not positive definite"):
        trial = study.ask(SPACE)
    assert "NotPSDError" in study.trials[-1].user_attrs[FALLBACK_ATTR]
    # the fallback is the trial's own point of the sampler's Sobol sequence
    space = dict(sorted(SPACE.items()))
    assert trial.params == sampler._sobol_point(trial.number, space)


def test_a_bug_in_our_code_raises_instead_of_falling_back(monkeypatch):
    def bug(*args, **kwargs):
        raise ValueError("not enough values to unpack")

    monkeypatch.setattr(sampler_module, "propose", bug)
    study = study_with(BoTorchSampler(seed=5, n_startup_trials=10), history(12))
    with pytest.raises(ValueError, match="unpack"):
        study.ask(SPACE)


def test_pruned_and_failed_trials_do_not_train_the_objectives(no_fallback, spy):
    complete = history(12, constrained=True)
    others = []
    for i, trial in enumerate(history(4, seed=1, constrained=True)):
        state = TrialState.PRUNED if i % 2 else TrialState.FAIL
        others.append(
            optuna.trial.create_trial(
                state=state,
                params=trial.params,
                distributions=trial.distributions,
                constraints=trial.constraints,
            )
        )
    study = study_with(BoTorchSampler(seed=0, n_startup_trials=10), complete + others)
    study.ask(SPACE)
    (seen,) = spy
    cube = CubeEncoding(SPACE)
    np.testing.assert_allclose(seen.X, [cube.encode(t.params) for t in complete])
    accuracy = [t.values[0] for t in complete]
    np.testing.assert_allclose(seen.Y[:, 0], accuracy)
    # the constraint GP learns from every trial that carries a constraint value
    assert len(seen.constraints) == 1
    assert len(seen.constraints[0].X) == len(complete) + len(others)
    # without TrialRecords, every objective learns from the COMPLETE trials alone
    assert all(len(o.X) == len(complete) and not o.fidelity for o in seen.objectives)


def test_log_scale_for_spread_minimised_objectives():
    values = np.array([[0.8, 1e3], [0.9, 1e6], [0.7, 5e4]])
    directions = [optuna.study.StudyDirection.MAXIMIZE, optuna.study.StudyDirection.MINIMIZE]
    automatic = history_module.objectives(directions, values)
    np.testing.assert_allclose(
        automatic, [[0.8, -np.log(1e3)], [0.9, -np.log(1e6)], [0.7, -np.log(5e4)]]
    )
    linear = history_module.objectives(directions, values, [False, False])
    np.testing.assert_allclose(linear[:, 1], -values[:, 1])


def test_cube_encoding_round_trips_and_snaps_to_the_grid():
    cube = CubeEncoding(SPACE)
    assert cube.dim == 5 + 5  # five numbers, one five-way one-hot block
    params = {"depth": 3, "width": 100, "k": 6, "lr": 1e-3, "alpha": 0.25, "loss": "rkd"}
    decoded = cube.decode(cube.encode(params))
    assert decoded == pytest.approx(params)
    noisy = cube.encode(params) + np.random.default_rng(0).normal(0, 0.01, cube.dim)
    snapped = cube.project(noisy[None, :])[0]
    assert cube.decode(snapped)["k"] in (4, 6, 8)
    np.testing.assert_allclose(cube.project(snapped[None, :])[0], snapped)


def test_bench_sampler_counts_fallbacks_and_fails_on_them(monkeypatch):
    from linear_operator.utils.errors import NotPSDError
    from typer.testing import CliRunner

    from autostudent.bench import sampler as bench
    from autostudent.cli.bench import app

    def broken(*args, **kwargs):
        raise NotPSDError("matrix not positive definite")

    monkeypatch.setattr("botorch.fit.fit_gpytorch_mll", broken)
    seconds, fallbacks = bench.time_asks(BoTorchSampler(seed=0), bench.history(12, 0), 2)
    assert len(seconds) == 2 and len(fallbacks) == 2 and "NotPSDError" in fallbacks[0]

    # the command exits 1 and says why (GPSampler's half of the bench is not rerun here)
    measured = {"trials": 12, "ours_s": 0.01, "fallbacks": 2, "fallback_reasons": fallbacks}
    monkeypatch.setattr(bench, "bench_sampler", lambda **kwargs: measured)
    result = CliRunner().invoke(app, ["sampler", "--trials", "12", "--json"])
    assert result.exit_code == 1
    assert "fell back to Sobol" in result.output


def cheap(sampler: BoTorchSampler) -> BoTorchSampler:
    sampler._settings = ProposalSettings(raw_samples=64, local_samples=16, restarts=2)
    return sampler


def test_known_constraints_hold_for_every_proposal_startup_included(no_fallback):
    # half of the square is over a "cap" the sampler can compute exactly: no proposal lands
    # there, neither the quasi-random startup nor the Bayesian ones nor after a fallback
    space = {"x": FloatDistribution(0.0, 1.0), "y": FloatDistribution(0.0, 1.0)}
    checked = []

    def evaluate(params):
        checked.append(params)
        return {"size": params["x"] + params["y"] - 1.0}

    sampler = cheap(
        BoTorchSampler(
            seed=0,
            n_startup_trials=4,
            search_space=space,
            known_constraints=KnownConstraints(("size",), evaluate),
        )
    )
    study = optuna.create_study(directions=["maximize"], sampler=sampler)
    for _ in range(10):
        trial = study.ask(space)
        study.tell(trial, trial.params["x"] + 2 * trial.params["y"])  # best on the cap line
    points = [t.params for t in study.trials]
    assert all(p["x"] + p["y"] <= 1.0 for p in points)
    assert max(p["x"] + 2 * p["y"] for p in points[4:]) > 1.8  # and still optimises
    assert len(checked) < 400  # checked lazily, not every raw candidate


def test_pruned_trials_teach_through_their_learning_curves(no_fallback, spy):
    records = TrialRecords(exact=[None, "size"], curve="curve", curve_objective=0)
    trials = history(12)
    pruned = []
    for epochs, trial in zip((2, 2, 1), history(3, seed=2), strict=True):
        accuracy, size = trial.values
        pruned.append(
            optuna.trial.create_trial(
                state=TrialState.PRUNED,
                params=trial.params,
                distributions=trial.distributions,
                user_attrs={"curve": [accuracy - 0.2] * epochs, "max_epochs": 3, "size": size},
            )
        )
    failed = optuna.trial.create_trial(
        state=TrialState.FAIL,
        params=pruned[0].params,
        distributions=SPACE,
        user_attrs={"size": 123.0},
    )
    reference = [0.0, 1e6]
    sampler = BoTorchSampler(
        seed=0, n_startup_trials=10, records=records, reference_point=reference
    )
    study = study_with(sampler, trials + pruned + [failed])
    study.ask(SPACE)
    (seen,) = spy
    accuracy, size = seen.objectives
    cube = CubeEncoding(SPACE)
    # epoch 1 of 3 is below min_fidelity: the two trials pruned at epoch 2 give one row each
    assert accuracy.fidelity and accuracy.X.shape == (12 + 2, cube.dim + 1)
    np.testing.assert_allclose(accuracy.X[:12, -1], 1.0)  # complete: full fidelity
    np.testing.assert_allclose(accuracy.X[12:, -1], 2 / 3)
    # the one pruned at epoch 1 is a believer point, as a running trial is
    np.testing.assert_allclose(seen.X_pending, [cube.encode(pruned[2].params)])
    # a size is exact whatever the state: complete, pruned and failed trials teach it
    assert not size.fidelity and len(size.X) == 12 + 3 + 1
    np.testing.assert_allclose(size.y[-1], -np.log(123.0))
    # the acquisition's reference is the study's, in the GP's form (log, larger is better)
    np.testing.assert_allclose(seen.reference, [0.0, -np.log(1e6)])


def test_pruned_trials_count_towards_the_startup(no_fallback, spy):
    # a study whose early stopping prunes most trials must still leave the quasi-random start:
    # 2 COMPLETE + 6 PRUNED = 8 finished >= n_startup_trials; with 1 COMPLETE it may not
    records = TrialRecords(exact=[None, "size"], curve="curve", curve_objective=0)

    def pruned(trial):
        accuracy, size = trial.values
        return optuna.trial.create_trial(
            state=TrialState.PRUNED,
            params=trial.params,
            distributions=trial.distributions,
            user_attrs={"curve": [accuracy - 0.1] * 2, "max_epochs": 3, "size": size},
        )

    def asked(trials):
        sampler = cheap(BoTorchSampler(seed=0, n_startup_trials=8, records=records))
        study_with(sampler, trials).ask(SPACE)

    asked(history(2) + [pruned(t) for t in history(6, seed=1)])
    assert len(spy) == 1
    asked(history(1) + [pruned(t) for t in history(7, seed=1)])
    assert len(spy) == 1  # one COMPLETE trial: still quasi-random


def test_a_share_of_multi_objective_proposals_improve_a_random_trade_off():
    from autostudent.sampler._propose import trade_off

    draws = [trade_off(2, seed, 0.5) for seed in range(200)]
    weights = [w for w in draws if w is not None]
    assert 70 < len(weights) < 130  # about half of the proposals
    assert all(float(w.sum()) == pytest.approx(1.0) and (w > 0).all() for w in weights)
    # both ends of the front get asked for: mostly accuracy, mostly size
    assert min(float(w[0]) for w in weights) < 0.2 < 0.8 < max(float(w[0]) for w in weights)
    # a pure function of the proposal's seed
    assert [None if w is None else w.tolist() for w in draws] == [
        None if w is None else w.tolist() for w in (trade_off(2, s, 0.5) for s in range(200))
    ]
    assert all(trade_off(1, seed, 1.0) is None for seed in range(20))  # one objective: EI
    assert all(trade_off(2, seed, 0.0) is None for seed in range(20))  # share 0: EHVI only
