"""The surrogate: GP hyperparameters fitted once per group of outputs, then one GP per output.

Outputs learnt on the same rows (``_history``) form a group. One *batched* SingleTaskGP per
group is fitted in a single
L-BFGS run on at most ``fit_subset`` rows, warm-started from the previous proposal's
hyperparameters and capped in iterations. For prediction its hyperparameters condition one GP
per output on every row, predicted by ``_posterior.IndependentGPs`` (the batched posterior
copies the n x n training cache per candidate: ~10x slower on 256 candidates; through GPyTorch's
lazy tensors one acquisition evaluation took 14 ms, 5 ms here).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import torch
    from botorch.models.model import Model

    from autostudent.sampler._history import Output
    from autostudent.sampler._posterior import IndependentGPs
    from autostudent.sampler._settings import ProposalSettings


def fit_model(
    outputs: list[Output],
    pending: torch.Tensor | None,
    warm_start: dict[str, Any],
    settings: ProposalSettings,
    generator: torch.Generator,
) -> IndependentGPs:
    """One GP per output, hyperparameters fitted per group; RUNNING trials (``pending``) as a
    Kriging believer: each is taken to return the posterior mean there (at full fidelity), and
    conditioning on it removes the GPs' uncertainty at (and near) that point."""
    import torch

    from autostudent.sampler._posterior import IndependentGPs

    groups: dict[int, list[int]] = {}
    for index, output in enumerate(outputs):
        groups.setdefault(id(output.X), []).append(index)
    parts: dict[int, tuple[torch.Tensor, torch.Tensor, dict[str, Any], int, bool]] = {}
    for members in groups.values():
        X = torch.as_tensor(outputs[members[0]].X, dtype=torch.float64)
        Y = torch.as_tensor(np.stack([outputs[i].y for i in members], 1), dtype=torch.float64)
        role = "outputs" + ",".join(map(str, members))
        hyper = fit_hyperparameters(X, Y, warm_start, role, settings, generator)
        for j, i in enumerate(members):
            parts[i] = (X, Y[:, j : j + 1], hyper, j, outputs[i].fidelity)
    fitted = [parts[i] for i in range(len(outputs))]
    flags = [f for *_, f in fitted]
    model = IndependentGPs([conditioned(x, y, h, j) for x, y, h, j, _ in fitted], flags)
    if pending is None or not len(pending):
        return model
    with torch.no_grad():
        believed = model.posterior(pending.unsqueeze(-2)).mean.squeeze(-2)
    full = torch.cat([pending, torch.ones_like(pending[:, :1])], dim=-1)
    return IndependentGPs(
        [
            conditioned(
                torch.cat([x, full if fidelity else pending]),
                torch.cat([y, believed[:, [i]]]),
                h,
                j,
            )
            for i, (x, y, h, j, fidelity) in enumerate(fitted)
        ],
        flags,
    )


def fit_hyperparameters(
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


def conditioned(X: torch.Tensor, y: torch.Tensor, hyper: dict[str, Any], j: int) -> Model:
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
