"""The sampler's coverage rules on hand-made histories: no architecture trained more than
``max_repeats`` times, and gap proposals inside the largest empty log-size interval of the front."""

from __future__ import annotations

import math
import warnings

import numpy as np
import optuna
import pytest
from optuna.distributions import FloatDistribution, IntDistribution
from optuna.trial import TrialState

from autostudent.sampler import (
    PROPOSAL_ATTR,
    RELAXED_ATTR,
    BoTorchSampler,
    Coverage,
    ProposalFallbackWarning,
)
from autostudent.sampler._coverage import largest_gap, wants_gap
from autostudent.sampler._settings import ProposalSettings

optuna.logging.set_verbosity(optuna.logging.WARNING)

SPACE = {"width": IntDistribution(1, 64, log=True), "alpha": FloatDistribution(0.0, 1.0)}
TEACHER = 1_000_000  # params: the gap range is 20,000 .. 333,333 (width 15 .. 57)


def measure(params):
    """A student's sizes: width only (alpha is a KD setting, the same architecture)."""
    return {"params": 100 * params["width"] ** 2, "flops": 1000 * params["width"] ** 2}


def accuracy(params) -> float:
    # the KD setting matters more than the size: re-tuning alpha on the smallest net pays most
    return 0.6 + 0.02 * math.log(params["width"]) - (params["alpha"] - 0.8) ** 2


def trial(
    width: int, alpha: float, state=TrialState.COMPLETE, proposal: str = "ehvi"
) -> optuna.trial.FrozenTrial:
    params = {"width": width, "alpha": alpha}
    done = state == TrialState.COMPLETE
    return optuna.trial.create_trial(
        params=params,
        distributions=SPACE,
        values=[accuracy(params), measure(params)["params"]] if done else None,
        state=state,
        user_attrs={PROPOSAL_ATTR: proposal},
    )


def sampler(**coverage) -> BoTorchSampler:
    s = BoTorchSampler(
        seed=0,
        n_startup_trials=4,
        search_space=SPACE,
        log_objectives=[False, True],
        coverage=Coverage(measure, **coverage) if coverage is not None else None,
    )
    s._settings = ProposalSettings(raw_samples=64, local_samples=16, restarts=2)
    return s


def study_of(s: BoTorchSampler, trials) -> optuna.Study:
    study = optuna.create_study(directions=["maximize", "minimize"], sampler=s)
    study.set_user_attr("teacher", {"params": TEACHER})
    for t in trials:
        study.add_trial(t)
    return study


@pytest.fixture(autouse=True)
def no_fallback():
    with warnings.catch_warnings():
        warnings.simplefilter("error", ProposalFallbackWarning)
        yield


# the smallest net trained three times with poor KD settings (one still running), and a few
# larger ones: the hypervolume on log size asks for the smallest net again
SMALL_CORNER = [
    trial(1, 0.1),
    trial(1, 0.3),
    trial(1, 0.5, TrialState.RUNNING),
    trial(2, 0.8),
    trial(4, 0.7),
    trial(8, 0.6),
]


def proposals(s: BoTorchSampler, trials, n: int) -> list[optuna.trial.FrozenTrial]:
    """``n`` proposals, each from the same history (none of them is told)."""
    out = []
    for _ in range(n):
        study = study_of(s, trials)
        asked = study.ask(SPACE)
        out.append(study.trials[asked.number])
    return out


def test_an_architecture_trained_max_repeats_times_is_not_proposed_again():
    control = [
        t.params["width"]
        for t in proposals(sampler(gap_share=0.0, max_repeats=99), SMALL_CORNER, 6)
    ]
    assert 1 in control  # without the rule, the small corner is asked for again
    asked = proposals(sampler(gap_share=0.0), SMALL_CORNER, 6)
    assert all(t.params["width"] != 1 for t in asked)  # two complete + one running: 3
    assert all(t.user_attrs[PROPOSAL_ATTR] in ("ehvi", "parego") for t in asked)
    assert not any(RELAXED_ATTR in t.user_attrs for t in asked)


def test_the_study_files_coverage_settings_reach_the_sampler():
    from autostudent.sampler import make_sampler

    s = make_sampler(
        "botorch",
        seed=0,
        n_startup_trials=4,
        objectives=["accuracy", "params"],
        search_space=SPACE,
        measure=measure,
        coverage={"max_repeats": 1, "gap_share": 0.0, "gap_fractions": (0.01, 0.5)},
    )
    s._settings = ProposalSettings(raw_samples=64, local_samples=16, restarts=2)
    asked = proposals(s, SMALL_CORNER, 4)
    assert all(t.params["width"] not in (1, 2, 4, 8) for t in asked)  # each trained once
    assert all(t.user_attrs[PROPOSAL_ATTR] != "gap" for t in asked)


def test_when_every_architecture_is_used_up_the_relaxed_rule_is_stored():
    space = {"width": IntDistribution(1, 2), "alpha": FloatDistribution(0.0, 1.0)}
    s = BoTorchSampler(
        seed=0, n_startup_trials=4, search_space=space, coverage=Coverage(measure, gap_share=0.0)
    )
    trials = [
        optuna.trial.create_trial(
            params={"width": w, "alpha": a},
            distributions=space,
            values=[accuracy({"width": w, "alpha": a}), 100 * w**2],
        )
        for w in (1, 2)
        for a in (0.2, 0.5, 0.9)
    ]
    study = optuna.create_study(directions=["maximize", "minimize"], sampler=s)
    for t in trials:
        study.add_trial(t)
    asked = study.ask(space)
    stored = study.trials[asked.number].user_attrs
    assert stored[RELAXED_ATTR] == "repeats"  # never silent
    assert stored[PROPOSAL_ATTR] in ("ehvi", "parego")


def test_gap_proposals_land_in_the_middle_of_the_largest_empty_interval():
    low, high = largest_gap([100, 400, 1600, 6400], TEACHER / 50, TEACHER / 3, 2.0)
    assert TEACHER / 50 < low < high < TEACHER / 3  # the whole range is empty: its middle
    asked = proposals(sampler(gap_share=1.0), SMALL_CORNER, 4)
    sizes = [measure(t.params)["params"] for t in asked]
    assert all(low <= s <= high for s in sizes), sizes
    assert all(t.user_attrs[PROPOSAL_ATTR] == "gap" for t in asked)
    control = proposals(sampler(gap_share=0.0), SMALL_CORNER, 4)
    assert not any(low <= measure(t.params)["params"] <= high for t in control)


def test_the_searcher_reads_how_a_trial_was_proposed_to_keep_gap_proposals_to_full_budget():
    # search.prune_gap_proposals: false — the sampler stores "gap" while ``ask`` runs, after
    # the trial object cached its attributes; the searcher reads the storage
    from autostudent.executor import StudySearcher

    study = study_of(sampler(gap_share=1.0), SMALL_CORNER)
    asked = study.ask(SPACE)
    assert PROPOSAL_ATTR not in asked.user_attrs  # the trial's own cache does not have it
    args = {"factory": None, "n_trials": 99, "max_epochs": 2, "caps": None, "objectives": []}
    assert StudySearcher(study, **args, full_budget=frozenset({"gap"}))._proposal(asked) == "gap"
    assert StudySearcher(study, **args)._proposal(asked) is None  # not asked when not needed


def test_without_retries_a_gap_proposal_that_trained_fills_its_size():
    # a gap proposal in the middle of the empty range was stopped early: not on the front
    tried = [*SMALL_CORNER, trial(28, 0.8, TrialState.PRUNED, proposal="gap")]
    front = [100, 400, 1600, 6400]
    first = largest_gap(front, TEACHER / 50, TEACHER / 3, 2.0)
    second = largest_gap([*front, 78_400], TEACHER / 50, TEACHER / 3, 2.0)
    assert first[0] < 78_400 < first[1] < second[1]  # the stopped one sat in the first gap
    for retry, (low, high) in ((True, first), (False, second)):
        asked = proposals(sampler(gap_share=1.0, retry_gaps=retry), tried, 3)
        sizes = [measure(t.params)["params"] for t in asked]
        assert all(low <= size <= high for size in sizes), (retry, sizes)
    # a stopped trial the hypervolume proposed is no gap proposal: the first gap stays
    hv = [*SMALL_CORNER, trial(28, 0.8, TrialState.PRUNED)]
    asked = proposals(sampler(gap_share=1.0, retry_gaps=False), hv, 3)
    assert all(first[0] <= measure(t.params)["params"] <= first[1] for t in asked)


def test_the_startup_is_quasi_random_but_keeps_the_repeat_rule():
    s = sampler()
    study = study_of(s, [trial(1, 0.1), trial(1, 0.2), trial(1, 0.3)])
    asked = [study.ask(SPACE) for _ in range(20)]
    assert all(study.trials[a.number].user_attrs[PROPOSAL_ATTR] == "sobol" for a in asked[:1])
    assert all(a.params["width"] != 1 for a in asked)


def test_largest_gap():
    # edges 1K | 5K 20K | 100K: the widest interval is 20K..100K (ties: the larger sizes)
    low, high = largest_gap([5_000, 20_000, 3_000_000], 1_000, 100_000, 2.0)
    assert low == pytest.approx(20_000 * 5**0.25) and high == pytest.approx(20_000 * 5**0.75)
    assert largest_gap(np.geomspace(1_000, 100_000, 10), 1_000, 100_000, 2.0) is None  # dense
    assert largest_gap([], 1_000, 1_500, 2.0) is None  # the whole range spans < 2x
    assert largest_gap([], 0.0, 1_000, 2.0) is None  # no teacher size


def test_a_third_of_the_proposals_target_the_gap_drawn_from_their_seed():
    draws = [wants_gap(seed, 1 / 3) for seed in range(600)]
    assert 160 < sum(draws) < 240
    assert draws == [wants_gap(seed, 1 / 3) for seed in range(600)]
    assert not any(wants_gap(seed, 0.0) for seed in range(50))


def test_a_points_sizes_are_counted_without_building_and_match_the_built_student():
    from autostudent.candidate import CandidateFactory
    from autostudent.config import load_config
    from autostudent.measure import count_params
    from autostudent.student import build_student

    factory = CandidateFactory(load_config("fashion_mnist"), (1, 28, 28), 10)
    distributions = factory.distributions()
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    for _ in range(5):
        point = study.ask(distributions).params
        sizes = factory.sizes(point)
        assert sizes["params"] == count_params(build_student(factory.make(0, point).spec))
        # the KD settings do not change the student: the repeat rule's "same architecture"
        assert factory.sizes({**point, "kd_alpha": 0.123, "kd_loss": "rkd"}) == sizes


def test_the_second_bench_task_has_another_shape():
    from pathlib import Path

    from autostudent.bench.hypervolume import task_config

    def config(task):
        return task_config(Path("/tmp/x"), Path("teacher.pt2"), "botorch", 0, 40, task)

    first, second = config("fashion-mnist-2k"), config("fashion-mnist-2k-flops")
    assert first.search.objectives == ["accuracy", "params"] and first.caps.max_params == 50_000
    assert second.search.objectives == ["accuracy", "flops"] and second.caps.max_params is None
    assert second.caps.max_flops == 12_000_000 and second.budget.epochs == 4
    assert (first.search.n_startup_trials, second.search.n_startup_trials) == (10, 6)
    assert second.search.sampler == "botorch" and second.search.n_trials == 40
    # --coverage sets ours' rules; Optuna's samplers have none
    rules = {"gap_share": 0.0, "retry_gaps": False}
    ours = task_config(Path("/tmp/x"), Path("t.pt2"), "botorch", 0, 40, "fashion-mnist-2k", rules)
    gp = task_config(Path("/tmp/x"), Path("t.pt2"), "gp", 0, 40, "fashion-mnist-2k", rules)
    assert (ours.search.coverage.gap_share, ours.search.coverage.retry_gaps) == (0.0, False)
    assert gp.search.coverage == first.search.coverage


def test_the_gap_range_ends_at_the_cap():
    s = sampler(gap_share=1.0)
    s._reference = [0.0, 100_000.0]  # the study's hypervolume reference: a 100K-param cap
    low, high = largest_gap([], TEACHER / 50, 100_000, 2.0)  # 20K .. 100K, not 333K
    asked = proposals(s, SMALL_CORNER, 3)
    sizes = [measure(t.params)["params"] for t in asked]
    assert all(low <= size <= high < 100_000 for size in sizes), sizes
