"""The acquisition function: how much a candidate is expected to improve on the trials so far.

Several objectives: qLogEHVI, or, for a share of the proposals, ParEGO (qLogEI of one random
Chebyshev trade-off); one objective: qLogEI. All improve on *denoised* incumbents (the
posterior mean at the feasible trials: a student's accuracy is a noisy measurement), and outcome
constraints weight the improvement by the probability of feasibility. qLogNEHVI / qLogNEI sample
the incumbents jointly with every candidate, so their cost grows with them: scoring 160
candidates at 500 trials took 0.45 s with qLogNEHVI on GPyTorch models (pruned baseline), against
0.06 s for qLogEHVI on ``IndependentGPs``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import torch
    from botorch.acquisition import AcquisitionFunction
    from botorch.models.model import Model

    from autostudent.sampler._settings import ProposalSettings


def load_fused_kernel() -> None:
    """Build (once per machine and venv, with ninja, into ~/.cache/torch_extensions) and load
    BoTorch 0.18's fused C++ kernel for qLogEHVI. Otherwise the first multi-objective proposal
    of a process does it: 37 s measured here, minutes on a fresh 2-core machine. ``.ci/setup``
    calls this once; ``bench hypervolume`` before its first timed run."""
    from botorch.acquisition.multi_objective import logei

    load = getattr(logei, "_try_load_fused_kernel", None)
    if load is not None:
        load()


def output(index: int) -> Callable[[torch.Tensor], torch.Tensor]:
    """Outcome constraint: the model's output ``index`` (feasible when <= 0)."""

    def constraint(Z: torch.Tensor) -> torch.Tensor:
        return Z[..., index]

    return constraint


def acquisition(
    model: Model,
    X: torch.Tensor,
    feasible: np.ndarray,
    pending: torch.Tensor | None,
    n_objectives: int,
    constraints: list[Callable[[torch.Tensor], torch.Tensor]] | None,
    seed: int,
    settings: ProposalSettings,
    reference: torch.Tensor | None = None,
    weights: torch.Tensor | None = None,
) -> AcquisitionFunction:
    """qLogEHVI (qLogEI for one objective) against the *denoised* incumbents: the posterior mean
    at the feasible trials and at the running ones believed feasible. Unlike qLogNEHVI, whose
    every evaluation samples the baseline jointly with the candidate, the cost of one evaluation
    does not grow with the number of incumbents (see the module docstring). ``reference`` is
    the hypervolume reference point (the study's, as ``status`` scores it); without one it is
    inferred from the incumbents' front. ``weights`` (several objectives): ParEGO instead,
    qLogEI of the augmented Chebyshev scalarisation of the objectives with these weights."""
    import torch
    from botorch.sampling import SobolQMCNormalSampler

    with torch.no_grad():
        means = model.posterior(X.unsqueeze(-2)).mean.squeeze(-2)
        incumbents = means[torch.as_tensor(feasible)]
        if pending is not None:
            believed = model.posterior(pending.unsqueeze(-2)).mean.squeeze(-2)
            incumbents = torch.cat(
                [incumbents, believed[(believed[:, n_objectives:] <= 0).all(dim=-1)]]
            )
    everything, incumbents = means[:, :n_objectives], incumbents[:, :n_objectives]
    sampler = SobolQMCNormalSampler(torch.Size([settings.mc_samples]), seed=seed)
    if n_objectives == 1 or weights is not None:
        from botorch.acquisition.logei import qLogExpectedImprovement
        from botorch.acquisition.objective import GenericMCObjective

        if weights is None:

            def scalar(Y: torch.Tensor) -> torch.Tensor:
                return Y[..., 0]
        else:
            from botorch.utils.multi_objective.scalarization import get_chebyshev_scalarization

            chebyshev = get_chebyshev_scalarization(weights, everything)  # scaled by the trials

            def scalar(Y: torch.Tensor) -> torch.Tensor:
                return chebyshev(Y[..., :n_objectives])

        best_f = scalar(incumbents).max() if len(incumbents) else scalar(everything).min()
        return qLogExpectedImprovement(
            model=model,
            best_f=best_f,
            sampler=sampler,
            objective=GenericMCObjective(lambda Z, X=None: scalar(Z)),
            constraints=constraints,
        )

    from botorch.acquisition.multi_objective.logei import qLogExpectedHypervolumeImprovement
    from botorch.acquisition.multi_objective.objective import IdentityMCMultiOutputObjective
    from botorch.utils.multi_objective.box_decompositions.non_dominated import (
        FastNondominatedPartitioning,
    )
    from botorch.utils.multi_objective.hypervolume import infer_reference_point
    from botorch.utils.multi_objective.pareto import is_non_dominated

    if reference is not None:
        ref_point = reference
    else:
        observed = incumbents if len(incumbents) else everything
        ref_point = infer_reference_point(observed[is_non_dominated(observed)])
    return qLogExpectedHypervolumeImprovement(
        model=model,
        ref_point=ref_point,
        partitioning=FastNondominatedPartitioning(ref_point, Y=incumbents),
        sampler=sampler,
        objective=IdentityMCMultiOutputObjective(outcomes=list(range(n_objectives))),
        constraints=constraints,
    )


def front(Y: np.ndarray, feasible: np.ndarray) -> np.ndarray:
    """Rows of the observed Pareto front of the feasible trials (of all, if none is)."""
    rows = np.flatnonzero(feasible) if feasible.any() else np.arange(len(Y))
    values = Y[rows]
    at_least = np.all(values[None, :, :] >= values[:, None, :], axis=2)
    better = np.any(values[None, :, :] > values[:, None, :], axis=2)
    return rows[~np.any(at_least & better, axis=1)]
