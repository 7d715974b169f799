"""The product's sampler and the catalogue of samplers a study can use.

``BoTorchSampler`` *is* an ``optuna.samplers.BaseSampler``::

    study = optuna.create_study(directions=["maximize", "minimize"], sampler=BoTorchSampler(seed=0))

Its parts are private modules named by role: ``_encoding`` (parameters <-> unit cube),
``_history`` (trials -> training data), ``_model`` and ``_posterior`` (the GPs),
``_acquisition`` (qLogEHVI / qLogEI), ``_optimise`` (maximising it), ``_settings`` (their
knobs), ``_coverage`` (the repeat and gap rules), ``_propose`` (one proposal), ``_sampler``
(the Optuna sampler) and ``_catalogue`` (samplers by name).
"""

from autostudent.sampler._acquisition import load_fused_kernel
from autostudent.sampler._catalogue import CAP_AWARE, SAMPLERS, make_sampler
from autostudent.sampler._coverage import Coverage
from autostudent.sampler._history import KnownConstraints, TrialRecords
from autostudent.sampler._sampler import (
    FALLBACK_ATTR,
    PROPOSAL_ATTR,
    RELAXED_ATTR,
    BoTorchSampler,
    ProposalFallbackWarning,
)

__all__ = [
    "CAP_AWARE",
    "FALLBACK_ATTR",
    "PROPOSAL_ATTR",
    "RELAXED_ATTR",
    "SAMPLERS",
    "BoTorchSampler",
    "Coverage",
    "KnownConstraints",
    "ProposalFallbackWarning",
    "TrialRecords",
    "load_fused_kernel",
    "make_sampler",
]
