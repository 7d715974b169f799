"""A lean BoTorch ``Model`` for the acquisition loop: fitted GPs predicted with plain tensors.

BoTorch's ``SingleTaskGP`` posterior goes through GPyTorch's lazy tensors, whose shape
bookkeeping (``torch.broadcast_shapes`` on every operator) made one acquisition evaluation on a
2-point batch cost ~14 ms at 100 trials, most of it overhead. ``IndependentGPs`` takes the
fitted single-output GPs (RBF kernel, constant mean, Gaussian noise, standardised outcomes:
BoTorch 0.18's defaults) and predicts the same posterior with a handful of matmuls, so the same
acquisition function runs several times faster. Outputs are independent, as in a
``ModelListGP``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import torch
from botorch.models.model import Model
from botorch.posteriors import Posterior

if TYPE_CHECKING:
    from botorch.models import SingleTaskGP


class _FittedGP:
    """One output: the training data and hyperparameters, with K^-1 precomputed. A
    ``fidelity`` GP has one more input column, the fidelity, and predicts at fidelity 1."""

    def __init__(self, gp: SingleTaskGP, fidelity: bool = False) -> None:
        self.fidelity = fidelity
        from gpytorch.kernels import RBFKernel
        from gpytorch.means import ConstantMean

        if not isinstance(gp.covar_module, RBFKernel) or not isinstance(
            gp.mean_module, ConstantMean
        ):
            raise TypeError("IndependentGPs expects SingleTaskGP's default RBF kernel and mean")
        with torch.no_grad():
            self.scaled_X = gp.train_inputs[0] / gp.covar_module.lengthscale
            self.inverse_lengthscale = 1.0 / gp.covar_module.lengthscale.reshape(-1)
            n = len(self.scaled_X)
            K = _rbf(self.scaled_X, self.scaled_X) + gp.likelihood.noise * torch.eye(
                n, dtype=self.scaled_X.dtype
            )
            L = torch.linalg.cholesky(K)
            eye = torch.eye(n, dtype=K.dtype)
            # L^-T explicitly: k @ L^-T folds any candidate batch into one 2-D matmul, where a
            # batched triangular solve would copy L once per candidate.
            self.inverse_root_T = torch.linalg.solve_triangular(L, eye, upper=False).T
            self.constant = gp.mean_module.constant.reshape(())
            residual = (gp.train_targets - self.constant).unsqueeze(-1)
            self.alpha = torch.cholesky_solve(residual, L).squeeze(-1)
            transform = gp.outcome_transform
            self.y_mean = transform.means.reshape(()) if transform is not None else 0.0
            self.y_std = transform.stdvs.reshape(()) if transform is not None else 1.0

    def predict(self, X: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean (..., q) and Cholesky factor of the covariance (..., q, q) at X (..., q, d)."""
        if self.fidelity:
            X = torch.cat([X, torch.ones_like(X[..., :1])], dim=-1)
        scaled = X * self.inverse_lengthscale
        k = _rbf(scaled, self.scaled_X)  # (..., q, n)
        mean = self.constant + k @ self.alpha
        V = k @ self.inverse_root_T  # (..., q, n)
        if X.shape[-2] == 1:
            variance = (1.0 - (V * V).sum(-1)).clamp_min(1e-12)
            root = variance.sqrt().unsqueeze(-1)
        else:
            covariance = _rbf(scaled, scaled) - V @ V.transpose(-1, -2)
            jitter = 1e-9 * torch.eye(X.shape[-2], dtype=X.dtype)
            root = torch.linalg.cholesky_ex(covariance + jitter)[0]
        return mean * self.y_std + self.y_mean, root * self.y_std


def _rbf(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """exp(-|a - b|^2 / 2) for inputs already divided by the length scales."""
    squared = (
        (a * a).sum(-1, keepdim=True)
        + (b * b).sum(-1).unsqueeze(-2)
        - 2.0 * a @ b.transpose(-1, -2)
    )
    return torch.exp(-0.5 * squared.clamp_min(0.0))


class IndependentGPs(Model):
    """Several fitted single-output GPs as one multi-output BoTorch model (for prediction)."""

    def __init__(self, gps: Sequence[SingleTaskGP], fidelity: Sequence[bool] = ()) -> None:
        super().__init__()
        flags = list(fidelity) or [False] * len(gps)
        self._outputs = [_FittedGP(gp, f) for gp, f in zip(gps, flags, strict=True)]

    @property
    def num_outputs(self) -> int:
        return len(self._outputs)

    @property
    def batch_shape(self) -> torch.Size:
        return torch.Size([])

    def posterior(
        self,
        X: torch.Tensor,
        output_indices: list[int] | None = None,
        observation_noise: bool | torch.Tensor = False,
        posterior_transform: Any = None,
        **kwargs: Any,
    ) -> Posterior:
        if observation_noise is not False:
            raise NotImplementedError("IndependentGPs predicts the latent function only")
        outputs = self._outputs
        if output_indices is not None:
            outputs = [outputs[i] for i in output_indices]
        means, roots = zip(*(output.predict(X) for output in outputs), strict=True)
        posterior = IndependentNormalPosterior(torch.stack(means, -1), torch.stack(roots, -3))
        return posterior_transform(posterior) if posterior_transform is not None else posterior


class IndependentNormalPosterior(Posterior):
    """Independent outputs, each jointly normal over the q points: mean (..., q, m) and the
    Cholesky factors of the per-output covariances (..., m, q, q)."""

    def __init__(self, mean: torch.Tensor, root: torch.Tensor) -> None:
        self._mean = mean
        self._root = root

    @property
    def mean(self) -> torch.Tensor:
        return self._mean

    @property
    def variance(self) -> torch.Tensor:
        return (self._root * self._root).sum(-1).transpose(-1, -2)

    @property
    def device(self) -> torch.device:
        return self._mean.device

    @property
    def dtype(self) -> torch.dtype:
        return self._mean.dtype

    @property
    def base_sample_shape(self) -> torch.Size:
        return self._mean.shape

    @property
    def batch_range(self) -> tuple[int, int]:
        return (0, -2)

    def _extended_shape(self, sample_shape: torch.Size = torch.Size()) -> torch.Size:
        return sample_shape + self._mean.shape

    def rsample_from_base_samples(
        self, sample_shape: torch.Size, base_samples: torch.Tensor
    ) -> torch.Tensor:
        if self._mean.shape[-2] == 1:  # one point: the factor is the standard deviation
            return self._mean + base_samples * self._root[..., 0, 0].unsqueeze(-2)
        z = base_samples.transpose(-1, -2).unsqueeze(-1)
        return self._mean + (self._root @ z).squeeze(-1).transpose(-1, -2)

    def rsample(self, sample_shape: torch.Size | None = None) -> torch.Tensor:
        sample_shape = torch.Size([1]) if sample_shape is None else sample_shape
        base = torch.randn(self._extended_shape(sample_shape), dtype=self.dtype)
        return self.rsample_from_base_samples(sample_shape, base)
