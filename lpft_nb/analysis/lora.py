"""Prop. 4.4: LoRA's FT-effective kernel as a scaled copy of FT's, checked layer by layer and over ranks."""

from __future__ import annotations

from collections.abc import Sequence
from importlib.metadata import version

import numpy as np

from ..config import DEFAULT_MODEL
from ..runs.grid import Study
from ..runs.run import model_fingerprint
from .features import feature_stats
from .kernels import KernelResult, KernelSpec
from .run_memo import cache_memo


def lora_init_variance(model: str = DEFAULT_MODEL, r: int = 8, cache_dir: str | None = None) -> dict:
    """Variance of peft's LoRA A initialisation: theory (kaiming-uniform, a = √5: U(±1/√d_in), var 1/(3 d_in))
    and the empirical variance of the A matrices of a freshly built model. Memoised in the cache's ``memo/``
    folder, keyed by the model's files, the peft version and the code that builds the model."""
    arguments = {"model": model_fingerprint(model, cache_dir), "r": r, "peft": version("peft")}
    sources = (_measure_init_variance, "lpft_nb.model.classifier")
    return cache_memo(
        "lora-init", arguments, sources, lambda: _measure_init_variance(model, r, cache_dir), cache_dir
    )


def _measure_init_variance(model: str, r: int, cache_dir: str | None) -> dict:
    import torch

    from ..model.classifier import build_classifier

    m = build_classifier(model, 3, seed=0, lora=True, lora_r=r, lora_alpha=r, cache_dir=cache_dir)
    a = torch.cat([p.detach().reshape(-1) for n, p in m.named_parameters() if "lora_A" in n])
    d_in = m.encoder.config.hidden_size
    return {
        "d_in": d_in,
        "theory": 1.0 / (3 * d_in),
        "empirical": float(a.var()),
        "distribution": f"U(−1/√{d_in}, 1/√{d_in}) (kaiming-uniform, a = √5)",
    }


def lora_kernel_scale(lora: KernelResult, ft_query_value: KernelResult, sigma2: float) -> dict:
    """Prop. 4.4 layer by layer: F^LoRA ≈ σ² r (α/r)² F^FT restricted to the query/value weights.

    Fits s* = ⟨F^LoRA, F^FT_qv⟩ / ⟨F^FT_qv, F^FT_qv⟩ on the train×train blocks; returns it with the
    prediction and the relative residual ‖F^LoRA − s* F^FT_qv‖ / ‖F^LoRA‖.
    """
    F_l, F_f = lora.blocks("F")[0], ft_query_value.blocks("F")[0]
    scale = float(np.sum(F_l * F_f) / np.sum(F_f * F_f))
    r, alpha = lora.spec.lora_r, lora.spec.lora_alpha
    return {
        "r": r,
        "alpha": alpha,
        "fitted": scale,
        "predicted": sigma2 * r * (alpha / r) ** 2,
        "relative_residual": float(np.linalg.norm(F_l - scale * F_f) / np.linalg.norm(F_l)),
    }


def rank_sweep_requests(
    dataset: str, ranks: Sequence[int], seeds: Sequence[int], settings: dict, kernel_args: dict
) -> tuple[dict[int, Study], list[KernelSpec]]:
    """What the rank sweep needs: per rank r a LoRA study with α = r, and LoRA's kernel at (r, α = r)."""
    studies = {
        int(r): Study(
            datasets=[dataset],
            methods=["lora"],
            seeds=list(seeds),
            settings={**settings, "lora_r": int(r), "lora_alpha": float(r)},
        )
        for r in ranks
    }
    specs = [
        KernelSpec(dataset=dataset, setting="lora", lora_r=int(r), lora_alpha=float(r), **kernel_args)
        for r in ranks
    ]
    return studies, specs


def rank_sweep(
    studies: dict[int, Study], kernels: Sequence[KernelResult], ft_query_value: KernelResult, sigma2: float
) -> list[dict]:
    """LoRA with r ∈ ranks and α = r (`rank_sweep_requests`, run): per-seed test accuracy (%) and feature
    change, the fitted kernel scale against FT's query/value kernel and its prediction σ² r. One dict per
    rank."""
    rows = []
    for (r, study), result in zip(studies.items(), kernels):
        dataset = study.datasets[0]
        s = lora_kernel_scale(result, ft_query_value, sigma2)
        rows.append(
            {
                "r": r,
                "accuracy": 100 * study.values(dataset, "lora", "test.accuracy"),
                "diff": study.values(dataset, "lora", lambda run: feature_stats(run)["Diff_last"]),
                "fitted": s["fitted"],
                "predicted": s["predicted"],
            }
        )
    return rows
