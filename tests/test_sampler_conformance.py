"""Optuna's own sampler conformance suite, run against BoTorchSampler (basic, relative and
multi-objective cases, as Optuna runs it against its samplers). Cheap settings keep it fast:
a small startup so that the Bayesian path runs in the objective-level cases."""

from __future__ import annotations

import warnings

import optuna
import pytest
from optuna.testing.pytest_samplers import (
    BasicSamplerTestCase,
    MultiObjectiveSamplerTestCase,
    RelativeSamplerTestCase,
)

from autostudent.sampler import BoTorchSampler, ProposalFallbackWarning
from autostudent.sampler._settings import ProposalSettings

optuna.logging.set_verbosity(optuna.logging.WARNING)
CHEAP = ProposalSettings(
    raw_samples=32, local_samples=8, restarts=1, acqf_maxiter=5, fit_maxiter_cold=20, mc_samples=16
)


def cheap_sampler() -> BoTorchSampler:
    sampler = BoTorchSampler(seed=0, n_startup_trials=2)
    sampler._settings = CHEAP
    return sampler


class TestBoTorchSamplerConformance(
    BasicSamplerTestCase, RelativeSamplerTestCase, MultiObjectiveSamplerTestCase
):
    @pytest.fixture(autouse=True)
    def _no_fallback(self):
        """A case passing through a fallback would not test the Bayesian path."""
        with warnings.catch_warnings():
            warnings.simplefilter("error", ProposalFallbackWarning)
            yield

    @pytest.fixture
    def sampler(self):
        return cheap_sampler
