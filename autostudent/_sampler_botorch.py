"""One BoTorch proposal: fit the GPs, build the acquisition, optimise it over the mixed cube.

Choices, each measured on the 2-core machine (see ``autostudent.bench.sampler``):

- One *batched* SingleTaskGP per group of outputs (objectives; constraints) is fitted in a single
  L-BFGS run on at most ``fit_subset`` trials, warm-started from the previous proposal's
  hyperparameters and capped in iterations. For prediction its hyperparameters condition one
  GP per output on every trial, predicted by ``_sampler_posterior.IndependentGPs`` (the
  batched posterior copies the n x n training cache per candidate: ~10x slower on 256
  candidates; through GPyTorch's lazy tensors one acquisition evaluation took 14 ms, 5 ms here).
- Several objectives: qLogEHVI; one objective: qLogEI. Both improve on *denoised* incumbents
  (the posterior mean at the feasible trials: a student's accuracy is a noisy measurement), and
  outcome constraints weight the improvement by the probability of feasibility. qLogNEHVI /
  qLogNEI sample the incumbents jointly with every candidate, so their cost grows with them:
  scoring 160 candidates at 500 trials took 0.45 s with qLogNEHVI on GPyTorch models (pruned
  baseline), against 0.06 s for qLogEHVI on ``IndependentGPs``.
- Running trials are handled as a Kriging believer: the GPs are conditioned on their posterior
  mean, which removes the uncertainty there and adds them to the incumbents, at a cost that
  does not grow with the number of workers (a joint q-batch HVI grows as 2^q).
- The acquisition is optimised by scoring projected Sobol points plus perturbations of the best
  trials, then running batched L-BFGS-B from the top few with every categorical one-hot block
  held fixed, snapping ints to the grid, and finally trying every other choice of each
  categorical on the winner.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import torch
    from botorch.acquisition import AcquisitionFunction
    from botorch.models.model import Model

    from autostudent._sampler_encoding import CubeEncoding


@dataclass(frozen=True)
class History:
    """What the GPs learn from, already in the cube and in "larger is better" form."""

    X: np.ndarray  # (n, d) COMPLETE trials
    Y: np.ndarray  # (n, m) objectives, maximised, log scale where asked
    feasible: np.ndarray  # (n,) every constraint <= 0 (all True without constraints)
    X_constraints: np.ndarray | None = None  # (k, d) finished trials that carry constraints
    C: np.ndarray | None = None  # (k, c) constraint values, feasible when <= 0
    X_pending: np.ndarray | None = None  # (p, d) RUNNING trials


@dataclass(frozen=True)
class ProposalSettings:
    """Knobs of one proposal; the defaults measured ~0.3 s CPU at 100 trials, ~0.7 s at 500."""

    raw_samples: int = 128
    local_samples: int = 32
    restarts: int = 2
    acqf_maxiter: int = 20
    fit_subset: int = 200
    fit_maxiter_cold: int = 100
    fit_maxiter_warm: int = 20
    mc_samples: int = 64


def propose(
    history: History,
    cube: CubeEncoding,
    *,
    seed: int,
    warm_start: dict[str, Any],
    settings: ProposalSettings,
) -> np.ndarray:
    """The next point of the cube to evaluate. ``warm_start`` is read and updated in place."""
    import torch
    from botorch.exceptions.warnings import OptimizationWarning

    from autostudent._sampler_posterior import IndependentGPs

    # CPU whatever the caller's default device (these are small tensors); own RNG state.
    with (
        torch.device("cpu"),
        torch.random.fork_rng(devices=[]),
        _single_thread(),
        warnings.catch_warnings(),
    ):
        # L-BFGS stopping early (iteration cap, "ABNORMAL" line search) is expected here: the
        # fit is warm-started next time and every optimised point competes with the raw ones.
        warnings.simplefilter("ignore", OptimizationWarning)
        torch.manual_seed(seed)
        generator = torch.Generator().manual_seed(seed)
        X = torch.as_tensor(history.X, dtype=torch.float64)
        Y = torch.as_tensor(history.Y, dtype=torch.float64)
        hyper = _fit_hyperparameters(X, Y, warm_start, "objectives", settings, generator)
        outputs = [(X, Y[:, j : j + 1], hyper, j) for j in range(Y.shape[-1])]
        constraints: list[Callable[[torch.Tensor], torch.Tensor]] | None = None
        if history.C is not None and history.X_constraints is not None:
            C = torch.as_tensor(_warp_constraints(history.C), dtype=torch.float64)
            Xc = torch.as_tensor(history.X_constraints, dtype=torch.float64)
            hyper = _fit_hyperparameters(Xc, C, warm_start, "constraints", settings, generator)
            outputs += [(Xc, C[:, j : j + 1], hyper, j) for j in range(C.shape[-1])]
            constraints = [_output(Y.shape[-1] + j) for j in range(C.shape[-1])]
        model = IndependentGPs([_conditioned(*output) for output in outputs])
        pending = None
        if history.X_pending is not None and len(history.X_pending):
            # Kriging believer: each running trial is taken to return the posterior mean there;
            # conditioning on it removes the GPs' uncertainty at (and near) that point.
            pending = torch.as_tensor(history.X_pending, dtype=torch.float64)
            with torch.no_grad():
                believed = model.posterior(pending.unsqueeze(-2)).mean.squeeze(-2)
            model = IndependentGPs(
                [
                    _conditioned(torch.cat([x, pending]), torch.cat([y, believed[:, [i]]]), h, j)
                    for i, (x, y, h, j) in enumerate(outputs)
                ]
            )
        acqf = _acquisition(
            model, X, history.feasible, pending, Y.shape[-1], constraints, seed, settings
        )
        front = _front(history.Y, history.feasible)
        spread = np.linspace(0, len(front) - 1, min(len(front), 8)).astype(int)
        anchors = X[torch.as_tensor(front[spread])]
        return _optimise(acqf, cube, anchors, seed, settings)


@contextmanager
def _single_thread() -> Iterator[None]:
    """These are many small tensor ops, where OpenMP/BLAS threads cost more than they give
    (GPSampler does the same): measured 3 ms vs 25-140 ms per GP-fit step on the loaded 2-core
    machine. The caller's thread settings are restored afterwards."""
    import torch
    from threadpoolctl import threadpool_limits

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with threadpool_limits(limits=1, user_api="blas"):
            yield
    finally:
        torch.set_num_threads(threads)


def _warp_constraints(C: np.ndarray) -> np.ndarray:
    """asinh(c / s): odd and monotone, so feasibility (c <= 0) is unchanged, while caps whose
    violations span orders of magnitude (params, FLOPs) become GP-friendly."""
    scale = np.median(np.abs(C), axis=0)
    scale = np.where(scale > 0, scale, 1.0)
    return np.arcsinh(C / scale)


def _output(index: int) -> Callable[[torch.Tensor], torch.Tensor]:
    def constraint(Z: torch.Tensor) -> torch.Tensor:
        return Z[..., index]

    return constraint


def _fit_hyperparameters(
    X: torch.Tensor,
    Y: torch.Tensor,
    warm_start: dict[str, Any],
    role: str,
    settings: ProposalSettings,
    generator: torch.Generator,
) -> dict[str, Any]:
    """Hyperparameters of one batched GP over the columns of ``Y``, fitted on a random subset of
    at most ``settings.fit_subset`` rows (the fit is cubic in it, prediction only quadratic)."""
    import torch
    from botorch.fit import fit_gpytorch_mll
    from botorch.models import SingleTaskGP
    from botorch.optim.closures import get_loss_closure_with_grads
    from gpytorch.mlls import ExactMarginalLogLikelihood

    rows = torch.arange(len(X))
    if len(X) > settings.fit_subset:
        rows = torch.randperm(len(X), generator=generator)[: settings.fit_subset].sort().values
    batched = SingleTaskGP(X[rows], Y[rows])
    key = f"{role}:{X.shape[-1]}:{Y.shape[-1]}"
    state = warm_start.get(key)
    if state is not None:
        batched.load_state_dict(state, strict=False)
    mll = ExactMarginalLogLikelihood(batched.likelihood, batched)
    mll.train()
    parameters = {name: p for name, p in mll.named_parameters() if p.requires_grad}
    # An explicit closure makes BoTorch fit all outputs in one L-BFGS run (its default for a
    # batched model is one run per output, measured 4x slower here).
    closure = get_loss_closure_with_grads(mll, parameters=parameters)
    maxiter = settings.fit_maxiter_cold if state is None else settings.fit_maxiter_warm
    fit_gpytorch_mll(mll, closure=closure, optimizer_kwargs={"options": {"maxiter": maxiter}})
    hyper = {
        name: value.detach().clone()
        for name, value in batched.state_dict().items()
        if not name.startswith("outcome_transform")
    }
    warm_start[key] = hyper
    return hyper


def _conditioned(X: torch.Tensor, y: torch.Tensor, hyper: dict[str, Any], j: int) -> Model:
    """A single-output GP on (X, y) with output ``j``'s hyperparameters of a batched fit."""
    from botorch.models import SingleTaskGP

    model = SingleTaskGP(X, y)
    state = {}
    for name, value in model.state_dict().items():
        source = hyper.get(name)
        if name.startswith("outcome_transform") or source is None:
            state[name] = value
        elif source.shape == value.shape:  # one output, or a shared buffer (prior, bound)
            state[name] = source
        else:  # a hyperparameter with the output as leading batch dimension
            state[name] = source[j].reshape(value.shape)
    model.load_state_dict(state)
    return model.eval()


def _acquisition(
    model: Model,
    X: torch.Tensor,
    feasible: np.ndarray,
    pending: torch.Tensor | None,
    n_objectives: int,
    constraints: list[Callable[[torch.Tensor], torch.Tensor]] | None,
    seed: int,
    settings: ProposalSettings,
) -> AcquisitionFunction:
    """qLogEHVI (qLogEI for one objective) against the *denoised* incumbents: the posterior mean
    at the feasible trials and at the running ones believed feasible. Unlike qLogNEHVI, whose
    every evaluation samples the baseline jointly with the candidate, the cost of one evaluation
    does not grow with the number of incumbents (see the module docstring)."""
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
    if n_objectives == 1:
        from botorch.acquisition.logei import qLogExpectedImprovement
        from botorch.acquisition.objective import GenericMCObjective

        best_f = incumbents.max() if len(incumbents) else everything.min()
        return qLogExpectedImprovement(
            model=model,
            best_f=best_f,
            sampler=sampler,
            objective=GenericMCObjective(lambda Z, X=None: Z[..., 0]) if constraints else None,
            constraints=constraints,
        )

    from botorch.acquisition.multi_objective.logei import qLogExpectedHypervolumeImprovement
    from botorch.acquisition.multi_objective.objective import IdentityMCMultiOutputObjective
    from botorch.utils.multi_objective.box_decompositions.non_dominated import (
        FastNondominatedPartitioning,
    )
    from botorch.utils.multi_objective.hypervolume import infer_reference_point
    from botorch.utils.multi_objective.pareto import is_non_dominated

    reference = incumbents if len(incumbents) else everything
    ref_point = infer_reference_point(reference[is_non_dominated(reference)])
    return qLogExpectedHypervolumeImprovement(
        model=model,
        ref_point=ref_point,
        partitioning=FastNondominatedPartitioning(ref_point, Y=incumbents),
        sampler=sampler,
        objective=IdentityMCMultiOutputObjective(outcomes=list(range(n_objectives))),
        constraints=constraints,
    )


def _front(Y: np.ndarray, feasible: np.ndarray) -> np.ndarray:
    """Rows of the observed Pareto front of the feasible trials (of all, if none is)."""
    rows = np.flatnonzero(feasible) if feasible.any() else np.arange(len(Y))
    values = Y[rows]
    at_least = np.all(values[None, :, :] >= values[:, None, :], axis=2)
    better = np.any(values[None, :, :] > values[:, None, :], axis=2)
    return rows[~np.any(at_least & better, axis=1)]


def _optimise(
    acqf: AcquisitionFunction,
    cube: CubeEncoding,
    anchors: torch.Tensor,
    seed: int,
    settings: ProposalSettings,
) -> np.ndarray:
    import torch
    from botorch.generation.gen import gen_candidates_scipy

    generator = torch.Generator().manual_seed(seed)
    raw = torch.quasirandom.SobolEngine(cube.dim, scramble=True, seed=seed).draw(
        settings.raw_samples, dtype=torch.float64
    )
    categorical = cube.categorical_columns
    numeric = [c for c in range(cube.dim) if c not in set(categorical)]
    picks = torch.randint(len(anchors), (settings.local_samples,), generator=generator)
    local = anchors[picks].clone()
    local[:, numeric] += 0.1 * torch.randn(
        settings.local_samples, len(numeric), generator=generator, dtype=torch.float64
    )
    candidates = _project(cube, torch.cat([raw, local.clamp(0.0, 1.0)]))
    with torch.no_grad():
        scores = acqf(candidates.unsqueeze(1))
    starts = candidates[scores.topk(min(settings.restarts, len(candidates))).indices].unsqueeze(1)
    fixed = {column: starts[:, 0, column].clone() for column in categorical}
    optimised, _ = gen_candidates_scipy(
        starts,
        acqf,
        lower_bounds=0.0,
        upper_bounds=1.0,
        options={"maxiter": settings.acqf_maxiter, "max_optimization_problem_aggregation_size": 1},
        fixed_features=fixed or None,
    )
    finalists = torch.cat([_project(cube, optimised.squeeze(1)), starts.squeeze(1)])
    with torch.no_grad():
        best = finalists[acqf(finalists.unsqueeze(1)).argmax()]
        swaps = _categorical_swaps(cube, best)
        if len(swaps):
            options = torch.cat([best.unsqueeze(0), swaps])
            best = options[acqf(options.unsqueeze(1)).argmax()]
    return best.numpy().copy()


def _project(cube: CubeEncoding, X: torch.Tensor) -> torch.Tensor:
    import torch

    return torch.from_numpy(cube.project(X.detach().numpy()))


def _categorical_swaps(cube: CubeEncoding, x: torch.Tensor) -> torch.Tensor:
    """``x`` with one categorical changed to each of its other choices."""
    import torch
    from optuna.distributions import CategoricalDistribution

    swaps = []
    for name, distribution in cube.search_space.items():
        if not isinstance(distribution, CategoricalDistribution):
            continue
        block = cube.columns[name]
        for column in range(block.start, block.stop):
            if x[column] == 1.0:
                continue
            swap = x.clone()
            swap[block] = 0.0
            swap[column] = 1.0
            swaps.append(swap)
    return torch.stack(swaps) if swaps else x.new_zeros((0, cube.dim))
