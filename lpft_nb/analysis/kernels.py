"""NTK at the start of the FT stage for a dataset and setting (ft, lp_ft, lora, lp_lora), cached on disk.

The training and evaluation subsets are drawn once per (dataset, seed) and shared by the four settings
(the authors' public code redraws them per setting). Kernels are memoised under ``<cache>/ntk/`` with
their subset indices, keyed by every setting and by the `code_key` of the code involved.
"""

from __future__ import annotations

import functools
import hashlib
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from ..config import DEFAULT_MODEL, LpC, lp_label, resolve_cache_dir
from ..data.tasks import load_task
from ..device import check_device_name, environment, gpu_memory_gib, resolve_device
from ..paper import METHOD_LABELS
from ..resources import peak_rss_gib
from ..runs.cache import code_key, memoize
from ..runs.run import RUN_MODULES, model_fingerprint
from .kernel_parts import EMBEDDING_MODES, PARAM_SUBSETS, KernelParts
from .kernel_stats import flat, ft_ratio, kernel_regression, numerical_rank, residuals

SETTINGS = ("ft", "lp_ft", "lora", "lp_lora")
# The authors' NTK script runs LoRA with its argument defaults r = 8, α = 16 (training used α = 8).
NTK_LORA_ALPHA = 16.0


@dataclass(frozen=True)
class KernelSpec:
    """Everything that decides a kernel."""

    dataset: str = "cb"
    setting: str = "lp_ft"
    n: int = 64
    seed: int = 1
    model: str = DEFAULT_MODEL
    max_length: int = 128
    max_train: int | None = None  # cap on the training split the LP head is fitted on
    lp_C: float | str = "cv"
    lp_binary_head: str = "paper"
    lora_r: int = 8
    lora_alpha: float = NTK_LORA_ALPHA
    embeddings: str = "exact"
    params: str = (
        "all"  # "all", or "query_value": F over the attention query/value weights only (FT settings)
    )
    device: str = "auto"  # where to compute (not in the key: any device gives the same kernel)
    data_dir: str | None = None
    cache_dir: str | None = None

    def validate(self) -> None:
        try:
            check_device_name(self.device)
        except ValueError as err:
            raise ValueError(f"device={self.device!r} {err}") from None
        if self.setting not in SETTINGS:
            raise ValueError(f"setting={self.setting!r} is unknown; valid: {', '.join(SETTINGS)}")
        if self.embeddings not in EMBEDDING_MODES:
            raise ValueError(
                f"embeddings={self.embeddings!r} is unknown; valid: {', '.join(EMBEDDING_MODES)}"
            )
        if self.n < 2:
            raise ValueError(f"n={self.n} must be >= 2")
        if self.seed < 0:
            raise ValueError(f"seed={self.seed} must be >= 0")
        if self.params not in PARAM_SUBSETS:
            raise ValueError(f"params={self.params!r} is unknown; valid: {', '.join(PARAM_SUBSETS)}")

    def identity(self) -> dict:
        ident = {k: v for k, v in self.__dict__.items() if k not in ("data_dir", "cache_dir", "device")}
        if "lora" not in self.setting:
            ident.pop("lora_r"), ident.pop("lora_alpha")
        if not self.setting.startswith("lp"):
            ident.pop("lp_C"), ident.pop("lp_binary_head"), ident.pop("max_train")
        return ident


@functools.cache
def kernel_code_key() -> str:
    """`code_key` of everything a kernel depends on: the run modules, `analysis.ntk` and `kernel_parts`,
    and the functions here that build the model and the subsets (statistics and plots can change without
    recomputing kernels). Modules are read from their files, not imported; once per process."""
    return code_key(
        *RUN_MODULES,
        "lpft_nb.analysis.ntk",
        "lpft_nb.analysis.kernel_parts",
        KernelSpec,
        _subsets,
        build_setting_model,
        _setting_inputs,
        kernel_path,
        get_kernels,
        _compute,
    )


def _subsets(n_train: int, n_eval: int, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Fixed per (dataset, seed): sorted indices of ≤ n training and ≤ n evaluation examples."""
    rng = np.random.default_rng(10_000 + seed)
    return (
        np.sort(rng.choice(n_train, min(n, n_train), replace=False)),
        np.sort(rng.choice(n_eval, min(n, n_eval), replace=False)),
    )


def build_setting_model(spec: KernelSpec, task, tokenizer):
    """The model at the start of the FT stage: random head (ft, lora) or LP head (lp_ft, lp_lora)."""
    from ..model.classifier import build_classifier
    from ..model.probe import fit_linear_probe
    from ..model.train import encode, predict

    model = build_classifier(
        spec.model,
        task.num_classes,
        spec.seed,
        lora="lora" in spec.setting,
        lora_r=spec.lora_r,
        lora_alpha=spec.lora_alpha,
        cache_dir=spec.cache_dir,
    ).to(resolve_device(spec.device))
    if spec.setting.startswith("lp"):
        feats = predict(model, encode(task.train, tokenizer, spec.max_length), 32)[1]
        probe = fit_linear_probe(
            feats,
            task.train.labels,
            task.num_classes,
            C=spec.lp_C,
            binary_head=spec.lp_binary_head,
            seed=spec.seed,
        )
        model.set_head(probe.weight, probe.bias)
    return model.eval()


def _setting_inputs(spec: KernelSpec, task):
    """The model at the start of the FT stage and the encoded training and test splits."""
    from ..model.classifier import load_tokenizer
    from ..model.train import encode

    tokenizer = load_tokenizer(spec.model, spec.cache_dir)
    model = build_setting_model(spec, task, tokenizer)
    return (
        model,
        encode(task.train, tokenizer, spec.max_length),
        encode(task.test, tokenizer, spec.max_length),
    )


@dataclass
class KernelResult:
    spec: KernelSpec
    parts: KernelParts
    train_idx: np.ndarray
    eval_idx: np.ndarray
    seconds: float
    peak_rss_gib: float
    cache_hit: bool
    path: Path
    environment: dict = None  # device, torch and CUDA versions of the computation (none for old entries)

    @property
    def C(self) -> int:
        return self.parts.num_classes

    def blocks(self, which: str) -> tuple[np.ndarray, np.ndarray]:
        """(train×train, eval×train) flattened kernels of 'P', 'F' or 'NTK'."""
        K4 = {"P": self.parts.P(), "F": self.parts.F, "NTK": self.parts.P() + self.parts.F}[which]
        n = self.parts.n_train
        return flat(K4[:n, :, :n]), K4[n:, :, :n].reshape(-1, n * self.C)

    def statistics(self, which: str) -> dict:
        """Rank (float32 and float64 tolerance), Frobenius norm and kernel-regression accuracies of 'P', 'F'
        or 'NTK', memoised in memory and on disk beside the kernels (the fit takes seconds to minutes)."""
        memo = self.__dict__.setdefault("_statistics_memo", {})
        if which not in memo:
            memo[which] = memoize(statistics_path(self.path, which), lambda: self._compute_statistics(which))[
                0
            ]
        return memo[which]

    def _compute_statistics(self, which: str) -> dict:
        K, K_et = self.blocks(which)
        n, y = self.parts.n_train, self.parts.labels
        acc = kernel_regression(K, K_et, y[:n], y[n:], self.C)
        return {
            "rank_fp32": numerical_rank(K, np.float32),
            "rank_fp64": numerical_rank(K, np.float64),
            "fn": float(np.linalg.norm(K)),
            **acc,
        }

    def ft_ratio(self) -> float:
        n = self.parts.n_train
        delta = residuals(self.parts.logits0[:n], self.parts.labels[:n])
        return ft_ratio(self.parts.P()[:n, :, :n], self.parts.F[:n, :, :n], delta)

    def authors_backward_passes(self, hidden: int, layers: int) -> int:
        """Backward passes of the authors' method for the same kernels (d per example per parameter group)."""
        n_train, n_eval = self.parts.n_train, len(self.parts.labels) - self.parts.n_train
        if "lora" in self.spec.setting:
            return hidden * layers * (n_train + n_eval)
        return hidden * (n_train * (2 + 2 * layers) + n_eval * (2 + 3 * layers))


def statistics_path(kernel_file: Path, which: str) -> Path:
    """The memo of one kernel file's statistics of `which`, keyed by the code that computes them too."""
    key = code_key(
        KernelResult.blocks, KernelResult._compute_statistics, flat, numerical_rank, kernel_regression
    )
    return kernel_file.parent.parent / "kernel-statistics" / f"{kernel_file.stem}-{which}-{key}.json"


def kernel_path(spec: KernelSpec, task=None) -> Path:
    """The memo file of `spec`'s kernels (whether or not it exists yet), keyed by every setting that decides
    them, the data, the model and the code."""
    task = task if task is not None else load_task(spec.dataset, spec.data_dir, max_train=spec.max_train)
    key_payload = {
        "spec": spec.identity(),
        "data": task.fingerprint(),
        "code": kernel_code_key(),
        "model": model_fingerprint(spec.model, spec.cache_dir),
    }
    key = hashlib.sha256(json.dumps(key_payload, sort_keys=True).encode()).hexdigest()[:20]
    root = resolve_cache_dir(spec.cache_dir) / "ntk"
    return root / f"{spec.dataset}-{spec.setting}-{spec.params}-n{spec.n}-s{spec.seed}-{key}.npz"


def get_kernels(
    spec: KernelSpec, progress: bool = False, refresh: bool = False, memory_gib: float = 5.0
) -> KernelResult:
    """Compute (or load) the kernels for `spec` on its training subset and test subset.

    `memory_gib` bounds the Jacobian block held at once (fewer parameter groups → fewer passes); on a GPU
    it is capped at half the device's free memory. It does not change the result, so it is not part of
    the cache key.
    """
    spec.validate()
    task = load_task(spec.dataset, spec.data_dir, max_train=spec.max_train)
    path = kernel_path(spec, task)
    z, hit = memoize(
        path, lambda: _compute(spec, task, progress, memory_gib), required=KERNEL_FIELDS, refresh=refresh
    )
    parts = KernelParts(
        z["p_scalar"],
        z["F"],
        z["logits0"],
        z["labels"],
        int(z["n_train"]),
        int(z["backward_passes"]),
        int(z["parameter_groups"]),
        int(z["n_parameters"]),
    )
    environment = json.loads(str(z["environment"])) if "environment" in z else {}
    return KernelResult(
        spec,
        parts,
        z["train_idx"],
        z["eval_idx"],
        float(z["seconds"]),
        float(z["peak_rss_gib"]),
        hit,
        path,
        environment,
    )


KERNEL_FIELDS = (
    "p_scalar",
    "F",
    "logits0",
    "labels",
    "n_train",
    "backward_passes",
    "parameter_groups",
    "n_parameters",
    "train_idx",
    "eval_idx",
    "seconds",
    "peak_rss_gib",
)


def _compute(spec: KernelSpec, task, progress: bool, memory_gib: float) -> dict:
    """The kernels of `spec` as the arrays stored in the cache (`KERNEL_FIELDS`)."""
    from .ntk import compute_kernels

    start = time.perf_counter()
    free = gpu_memory_gib(resolve_device(spec.device))  # a device this machine lacks: one line, no work
    if free is not None:
        memory_gib = min(memory_gib, 0.5 * free["free_gib"])
    model, enc_train, enc_test = _setting_inputs(spec, task)
    device = next(model.parameters()).device
    train_idx, eval_idx = _subsets(len(enc_train), len(enc_test), spec.n, spec.seed)
    bar = tqdm(desc=f"NTK {spec.dataset}/{spec.setting}", disable=not progress, leave=False)
    parts = compute_kernels(
        model,
        enc_train,
        train_idx,
        enc_test,
        eval_idx,
        embeddings=spec.embeddings,
        memory_gib=memory_gib,
        seed=spec.seed,
        progress=bar,
        subset=spec.params,
    )
    bar.close()
    return {
        "p_scalar": parts.p_scalar,
        "F": parts.F,
        "logits0": parts.logits0,
        "labels": parts.labels,
        "n_train": parts.n_train,
        "backward_passes": parts.backward_passes,
        "parameter_groups": parts.parameter_groups,
        "n_parameters": parts.n_parameters,
        "train_idx": train_idx,
        "eval_idx": eval_idx,
        "seconds": time.perf_counter() - start,
        "peak_rss_gib": peak_rss_gib(),
        "environment": json.dumps(environment(device)),
    }


def setting_label(spec: KernelSpec) -> str:
    return METHOD_LABELS[spec.setting] + (
        f" ({lp_label(spec.lp_C)})" if spec.setting.startswith("lp") else ""
    )


def grid_specs(
    dataset: str, settings: Sequence[str], lp_Cs: Sequence[LpC], **spec_kwargs
) -> list[KernelSpec]:
    """One KernelSpec per setting (LP-headed settings once per LP regularisation), in order."""
    return [
        KernelSpec(dataset=dataset, setting=setting, lp_C=lp_C, **spec_kwargs)
        for setting in settings
        for lp_C in (lp_Cs if setting.startswith("lp") else lp_Cs[:1])
    ]


def load_kernels(specs: Sequence[KernelSpec]) -> list[KernelResult]:
    """`get_kernels` of each spec, in order. Prints one line per kernel: computed or from the cache,
    backward passes and peak memory."""
    results, lines = [], []
    for spec in specs:
        result = get_kernels(spec)
        results.append(result)
        source = "from the cache" if result.cache_hit else "computed"
        lines.append(
            f"{spec.dataset} {setting_label(spec):<28} {source}: {result.seconds:.0f} s, "
            f"{result.parts.backward_passes} backward passes over {result.parts.n_parameters:,} "
            f"parameters, peak RSS {result.peak_rss_gib:.1f} GiB"
        )
    print("\n".join(lines))
    return results


def kernel_grid(dataset: str, settings: Sequence[str], lp_Cs: Sequence[LpC], **spec_kwargs) -> dict:
    """Kernels of `grid_specs`, keyed by `setting_label`."""
    specs = grid_specs(dataset, settings, lp_Cs, **spec_kwargs)
    return {setting_label(r.spec): r for r in load_kernels(specs)}
