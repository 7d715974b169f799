"""One BoTorch proposal: fit the surrogate, build the acquisition, optimise it over the cube.

Running trials are handled as a Kriging believer (``_model.fit_model``), at a cost that does
not grow with the number of workers (a joint q-batch HVI grows as 2^q). Each step's choices are
in its own module (``_model``, ``_acquisition``, ``_optimise``), measured on the 2-core machine
(see ``autostudent.bench.sampler``).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import numpy as np

from autostudent.sampler._acquisition import acquisition, front, output
from autostudent.sampler._model import fit_model
from autostudent.sampler._optimise import optimise
from autostudent.sampler._settings import ProposalSettings

if TYPE_CHECKING:
    import torch

    from autostudent.sampler._encoding import CubeEncoding
    from autostudent.sampler._history import History


def propose(
    history: History,
    cube: CubeEncoding,
    *,
    seed: int,
    warm_start: dict[str, Any],
    settings: ProposalSettings,
    tier: Callable[[np.ndarray], int] | None = None,
    parego: bool = True,
) -> tuple[np.ndarray, str]:
    """The next point of the cube to evaluate and the acquisition that chose it ("ehvi",
    "parego" or "ei"). ``warm_start`` is read and updated in place; ``tier(row)`` (known
    constraints and ``_coverage``'s rules, 0: all met) ranks candidates inside the
    optimisation; ``parego=False``: no ParEGO draw, the hypervolume (gap proposals)."""
    import torch
    from botorch.exceptions.warnings import OptimizationWarning

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
        pending = None
        if history.X_pending is not None and len(history.X_pending):
            pending = torch.as_tensor(history.X_pending, dtype=torch.float64)
        outputs = history.objectives + history.constraints
        model = fit_model(outputs, pending, warm_start, settings, generator)
        m = len(history.objectives)
        constraints = [output(m + k) for k in range(len(history.constraints))] or None
        X = torch.as_tensor(history.X, dtype=torch.float64)
        reference = None
        if history.reference is not None:
            reference = torch.as_tensor(history.reference, dtype=torch.float64)
        weights = trade_off(m, seed, settings.scalarised_share if parego else 0.0)
        acqf = acquisition(
            model,
            X,
            history.feasible,
            pending,
            m,
            constraints,
            seed,
            settings,
            reference,
            weights=weights,
        )
        rows = front(history.Y, history.feasible)
        spread = np.linspace(0, len(rows) - 1, min(len(rows), 8)).astype(int)
        anchors = X[torch.as_tensor(rows[spread])]
        kind = "ei" if m == 1 else "ehvi" if weights is None else "parego"
        return optimise(acqf, cube, anchors, seed, settings, tier), kind


def trade_off(n_objectives: int, seed: int, share: float) -> torch.Tensor | None:
    """ParEGO weights for this proposal (uniform on the simplex), with probability ``share``
    when there are several objectives; None: improve the hypervolume."""
    import torch

    rng = np.random.default_rng(seed)
    if n_objectives < 2 or rng.random() >= share:
        return None
    return torch.as_tensor(rng.dirichlet(np.ones(n_objectives)), dtype=torch.float64)


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
