"""Maximising the acquisition over the mixed cube (floats, ints, one-hot categoricals).

Score projected Sobol points plus perturbations of the best trials, run batched L-BFGS-B from
the top few with every categorical one-hot block held fixed, snap ints to the grid, and finally
try every other choice of each categorical on the winner.

Known constraints (a student's size against its cap, the repeat and gap rules of ``_coverage``:
exact, ~10 ms a point) rank candidates in tiers (0: every rule met) at every choice: the starts
are the best-scoring raw points of the lowest tier, and the winner is the best finalist of the
lowest tier (a start is one). Candidates are checked lazily in score order, so a proposal checks
a handful of points, not all of them, unless no point meets every rule.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import torch
    from botorch.acquisition import AcquisitionFunction

    from autostudent.sampler._encoding import CubeEncoding
    from autostudent.sampler._settings import ProposalSettings


def optimise(
    acqf: AcquisitionFunction,
    cube: CubeEncoding,
    anchors: torch.Tensor,
    seed: int,
    settings: ProposalSettings,
    tier: Callable[[np.ndarray], int] | None = None,
) -> np.ndarray:
    """The best point found, a row of the cube that decodes and re-encodes unchanged, of the
    lowest ``tier`` among the candidates (0: meets every rule)."""
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
    ranked = candidates[scores.argsort(descending=True)]
    starts = _best_tiered(ranked, settings.restarts, tier).unsqueeze(1)
    finalists = starts.squeeze(1)
    if numeric:  # an all-categorical space has nothing to follow a gradient along
        fixed = {column: starts[:, 0, column].clone() for column in categorical}
        optimised, _ = gen_candidates_scipy(
            starts,
            acqf,
            lower_bounds=0.0,
            upper_bounds=1.0,
            options={
                "maxiter": settings.acqf_maxiter,
                "max_optimization_problem_aggregation_size": 1,
            },
            fixed_features=fixed or None,
        )
        finalists = torch.cat([_project(cube, optimised.squeeze(1)), finalists])
    with torch.no_grad():
        ranked = finalists[acqf(finalists.unsqueeze(1)).argsort(descending=True)]
        best = _best_tiered(ranked, 1, tier)[0]
        swaps = _categorical_swaps(cube, best)
        if len(swaps):
            options = torch.cat([best.unsqueeze(0), swaps])
            ranked = options[acqf(options.unsqueeze(1)).argsort(descending=True)]
            best = _best_tiered(ranked, 1, tier)[0]
    return best.numpy().copy()


def _best_tiered(
    ranked: torch.Tensor, k: int, tier: Callable[[np.ndarray], int] | None
) -> torch.Tensor:
    """The first ``k`` rows of ``ranked`` (best first) of tier 0, checked lazily; when fewer
    are, the best ``k`` rows by (tier, rank) (the sampler stores a proposal above tier 0)."""
    import torch

    if tier is None:
        return ranked[:k]
    scored = []
    for rank, row in enumerate(ranked):
        scored.append((tier(row.numpy()), rank))
        if sum(t == 0 for t, _ in scored) == k:
            break
    return torch.stack([ranked[rank] for _, rank in sorted(scored)[:k]])


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
