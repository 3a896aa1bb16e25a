"""Corollary 4.3 on the paper's linear model f(x) = V B x + b, trained from scratch in closed form.

Under gradient descent the update of B is Σ_i V_tᵀ δ_i x_iᵀ: its rows stay in the span of the training
inputs, so φ(x) = B x cannot change for any x orthogonal to that span — at every step, not only in the
NTK limit. Adam rescales each coordinate of the update and breaks this (shown for contrast).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from .run_memo import cache_memo


@dataclass
class SpanExperiment:
    """Feature change ‖B_T x − B_0 x‖ of test inputs orthogonal to / inside the training span."""

    optimizer: str
    steps: int
    orthogonal_change: np.ndarray  # (n_test,)
    in_span_change: np.ndarray  # (n_test,)
    final_train_loss: float
    initial_train_loss: float


def span_experiment(
    n_train: int = 8,
    d: int = 32,
    h: int = 16,
    num_classes: int = 3,
    steps: int = 200,
    lr: float = 0.1,
    optimizer: str = "gd",
    n_test: int = 16,
    seed: int = 0,
    cache_dir: str | None = None,
) -> SpanExperiment:
    """Train f = V B x + b with cross-entropy on `n_train` < d random inputs; measure feature changes.

    Computed in float64. `optimizer` is "gd" (full-batch gradient descent, the corollary's setting) or "adam".
    Memoised in the cache's ``memo/`` folder (`cache_dir`, else the default cache).
    """
    if n_train >= d:
        raise ValueError("need n_train < d so that the training inputs leave an orthogonal complement")
    if optimizer not in ("gd", "adam"):
        raise ValueError(f"optimizer must be 'gd' or 'adam', got {optimizer!r}")
    arguments = {
        "n_train": n_train,
        "d": d,
        "h": h,
        "num_classes": num_classes,
        "steps": steps,
        "lr": lr,
        "optimizer": optimizer,
        "n_test": n_test,
        "seed": seed,
    }
    stored = cache_memo(
        "span", arguments, (SpanExperiment, _train), lambda: _as_json(_train(**arguments)), cache_dir
    )
    return SpanExperiment(**{k: np.asarray(v) if isinstance(v, list) else v for k, v in stored.items()})


def _as_json(result: SpanExperiment) -> dict:
    return {k: v.tolist() if isinstance(v, np.ndarray) else v for k, v in asdict(result).items()}


def _train(
    n_train: int,
    d: int,
    h: int,
    num_classes: int,
    steps: int,
    lr: float,
    optimizer: str,
    n_test: int,
    seed: int,
) -> SpanExperiment:
    """The experiment itself (`span_experiment` memoises it)."""
    import torch

    g = torch.Generator().manual_seed(seed)
    X = torch.randn(n_train, d, generator=g, dtype=torch.float64)
    y = torch.arange(n_train) % num_classes
    B = (torch.randn(h, d, generator=g, dtype=torch.float64) / d**0.5).requires_grad_()
    V = (0.5 * torch.randn(num_classes, h, generator=g, dtype=torch.float64)).requires_grad_()
    b = torch.zeros(num_classes, dtype=torch.float64, requires_grad=True)
    # test inputs: random vectors projected onto the orthogonal complement / onto the span of X
    Q, _ = torch.linalg.qr(X.T)  # (d, n_train), orthonormal basis of span(X)
    R = torch.randn(n_test, d, generator=g, dtype=torch.float64)
    x_in = R @ Q @ Q.T
    x_perp = R - x_in
    B0 = B.detach().clone()
    params = [B, V, b]
    opt = torch.optim.SGD(params, lr=lr) if optimizer == "gd" else torch.optim.Adam(params, lr=lr * 0.1)
    loss_fn = torch.nn.CrossEntropyLoss()
    losses = []
    for _ in range(steps):
        loss = loss_fn(X @ B.T @ V.T + b, y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    with torch.no_grad():
        delta = (B - B0).T
        return SpanExperiment(
            optimizer,
            steps,
            torch.linalg.norm(x_perp @ delta, dim=1).numpy(),
            torch.linalg.norm(x_in @ delta, dim=1).numpy(),
            losses[-1],
            losses[0],
        )
