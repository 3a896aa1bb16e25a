"""Eq. (1) checked on the model itself: one small gradient step against the step the kernel predicts."""

from __future__ import annotations

import copy

import numpy as np

from ..config import LpC, resolve_cache_dir
from ..data.tasks import load_task
from ..runs.cache import code_key, memoize
from .kernel_stats import residuals
from .kernels import KernelResult, KernelSpec, _setting_inputs


def linearization_check(spec: KernelSpec, result: KernelResult, target_change: float = 0.05) -> dict:
    """Eq. (1) in action: one full-batch gradient step on the training subset (eval mode, plain SGD);
    the logit change of the evaluation examples predicted by the kernel against the one measured.

    The step size is chosen so that the largest predicted change is `target_change` logits.
    Returns {"predicted": (n_eval, C), "measured": (n_eval, C), "lr": η, "relative_error": ‖m − p‖/‖p‖};
    cached under ``<cache>/linearization/`` by the kernel's name (``ntk/`` holds kernels only).
    """
    code = code_key(_linearization_step, residuals)
    folder = resolve_cache_dir(spec.cache_dir) / "linearization"
    folder.mkdir(parents=True, exist_ok=True)
    cached = folder / f"{result.path.stem}-step{target_change:g}-{code}.npz"
    z, _ = memoize(
        cached,
        lambda: _linearization_step(spec, result, target_change),
        required=("predicted", "measured", "lr", "relative_error"),
    )
    return {
        "predicted": z["predicted"],
        "measured": z["measured"],
        "lr": float(z["lr"]),
        "relative_error": float(z["relative_error"]),
    }


def _linearization_step(spec: KernelSpec, result: KernelResult, target_change: float) -> dict:
    import torch

    model, enc_train, enc_test = _setting_inputs(
        spec, load_task(spec.dataset, spec.data_dir, max_train=spec.max_train)
    )
    n = result.parts.n_train
    device = next(model.parameters()).device
    K = result.parts.P() + result.parts.F
    delta = residuals(result.parts.logits0[:n], result.parts.labels[:n])
    unit = np.einsum("ncmd,md->nc", K[n:, :, :n], delta) / n  # Δf per unit learning rate
    lr = target_change / np.abs(unit).max()
    stepped = copy.deepcopy(model)
    params = [p for name, p in stepped.named_parameters() if p.requires_grad]
    for param in params:
        param.grad = None
    loss_fn = torch.nn.CrossEntropyLoss(reduction="sum")
    for i in result.train_idx:
        batch = enc_train.batch([i], device)
        loss = loss_fn(stepped(**batch), torch.from_numpy(enc_train.labels[[i]]).to(device)) / n
        loss.backward()
    with torch.no_grad():
        for param in params:
            if param.grad is not None:
                param -= lr * param.grad
    with torch.no_grad():
        before = torch.cat([model(**enc_test.batch([i], device)) for i in result.eval_idx])
        after = torch.cat([stepped(**enc_test.batch([i], device)) for i in result.eval_idx])
        before, after = before.double().cpu().numpy(), after.double().cpu().numpy()
    measured, predicted = after - before, lr * unit
    return {
        "predicted": predicted,
        "measured": measured,
        "lr": float(lr),
        "relative_error": float(np.linalg.norm(measured - predicted) / np.linalg.norm(predicted)),
    }


def linearization_checks(results: dict, lp_C: LpC, target_change: float = 0.05) -> dict:
    """`linearization_check` for FT and for LP-FT with the given LP regularisation, keyed by setting."""
    out = {}
    for result in results.values():
        setting = result.spec.setting
        if setting == "ft" or (setting == "lp_ft" and result.spec.lp_C == lp_C):
            out[setting] = linearization_check(result.spec, result, target_change)
    return out
