"""NTK at the start of the FT stage for a dataset and setting (ft, lp_ft, lora, lp_lora), cached on disk.

The training and evaluation subsets are drawn once per (dataset, seed) and shared by the four settings
(the authors' code redrew them per setting, reference-impl.md §2.4). Kernels are written atomically under
``<cache>/ntk/`` with their subset indices, keyed by every setting and by the source of the code involved.
"""

from __future__ import annotations

import copy
import hashlib
import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .atomic import load_npz, save_npz
from .bench import peak_rss_gib
from .config import DEFAULT_MODEL, resolve_cache_dir
from .data import load_task
from .model import build_classifier, load_tokenizer
from .ntk import (
    EMBEDDING_MODES,
    PARAM_SUBSETS,
    KernelParts,
    compute_kernels,
    flat,
    ft_ratio,
    kernel_regression,
    numerical_rank,
    residuals,
)
from .probe import fit_linear_probe
from .runs import model_fingerprint, source_hash
from .train import encode, predict

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
    params: str = "all"  # "all", or "query_value": F over the attention query/value weights only (FT settings)
    data_dir: str | None = None
    cache_dir: str | None = None

    def validate(self) -> None:
        if self.setting not in SETTINGS:
            raise ValueError(f"setting={self.setting!r} is unknown; valid: {', '.join(SETTINGS)}")
        if self.embeddings not in EMBEDDING_MODES:
            raise ValueError(f"embeddings={self.embeddings!r} is unknown; valid: {', '.join(EMBEDDING_MODES)}")
        if self.n < 2:
            raise ValueError(f"n={self.n} must be >= 2")
        if self.seed < 0:
            raise ValueError(f"seed={self.seed} must be >= 0")
        if self.params not in PARAM_SUBSETS:
            raise ValueError(f"params={self.params!r} is unknown; valid: {', '.join(PARAM_SUBSETS)}")

    def identity(self) -> dict:
        ident = {k: v for k, v in self.__dict__.items() if k not in ("data_dir", "cache_dir")}
        if "lora" not in self.setting:
            ident.pop("lora_r"), ident.pop("lora_alpha")
        if not self.setting.startswith("lp"):
            ident.pop("lp_C"), ident.pop("lp_binary_head"), ident.pop("max_train")
        return ident


def _code_hash() -> str:
    """Source of everything a kernel depends on: the run modules, ntk.py, and the functions here that build
    the model and the subsets (statistics and plots can change without recomputing kernels)."""
    import inspect

    parts = [source_hash(), Path(__file__).with_name("ntk.py").read_text()]
    parts += [inspect.getsource(obj) for obj in (KernelSpec, _subsets, build_setting_model, _setting_inputs,
                                                 get_kernels)]
    return hashlib.sha256("".join(parts).encode()).hexdigest()[:16]


def _subsets(n_train: int, n_eval: int, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Fixed per (dataset, seed): sorted indices of ≤ n training and ≤ n evaluation examples."""
    rng = np.random.default_rng(10_000 + seed)
    return (np.sort(rng.choice(n_train, min(n, n_train), replace=False)),
            np.sort(rng.choice(n_eval, min(n, n_eval), replace=False)))


def build_setting_model(spec: KernelSpec, task, tokenizer):
    """The model at the start of the FT stage: random head (ft, lora) or LP head (lp_ft, lp_lora)."""
    model = build_classifier(spec.model, task.num_classes, spec.seed, lora="lora" in spec.setting,
                             lora_r=spec.lora_r, lora_alpha=spec.lora_alpha, cache_dir=spec.cache_dir)
    if spec.setting.startswith("lp"):
        feats = predict(model, encode(task.train, tokenizer, spec.max_length), 32)[1]
        probe = fit_linear_probe(feats, task.train.labels, task.num_classes, C=spec.lp_C,
                                 binary_head=spec.lp_binary_head, seed=spec.seed)
        with torch.no_grad():
            model.head.weight.copy_(torch.from_numpy(probe.weight).float())
            model.head.bias.copy_(torch.from_numpy(probe.bias).float())
    return model.eval()


def _setting_inputs(spec: KernelSpec, task):
    """The model at the start of the FT stage and the encoded training and test splits."""
    tokenizer = load_tokenizer(spec.model, spec.cache_dir)
    model = build_setting_model(spec, task, tokenizer)
    return model, encode(task.train, tokenizer, spec.max_length), encode(task.test, tokenizer, spec.max_length)


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

    @property
    def C(self) -> int:
        return self.parts.num_classes

    def blocks(self, which: str) -> tuple[np.ndarray, np.ndarray]:
        """(train×train, eval×train) flattened kernels of 'P', 'F' or 'NTK'."""
        K4 = {"P": self.parts.P(), "F": self.parts.F, "NTK": self.parts.P() + self.parts.F}[which]
        n = self.parts.n_train
        return flat(K4[:n, :, :n]), K4[n:, :, :n].reshape(-1, n * self.C)

    def statistics(self, which: str) -> dict:
        """Rank (float32 and float64 tolerance), Frobenius norm and kernel-regression accuracies (memoised)."""
        memo = self.__dict__.setdefault("_statistics_memo", {})
        if which not in memo:
            memo[which] = self._compute_statistics(which)
        return memo[which]

    def _compute_statistics(self, which: str) -> dict:
        K, K_et = self.blocks(which)
        n, y = self.parts.n_train, self.parts.labels
        acc = kernel_regression(K, K_et, y[:n], y[n:], self.C)
        return {"rank_fp32": numerical_rank(K, np.float32), "rank_fp64": numerical_rank(K, np.float64),
                "fn": float(np.linalg.norm(K)), **acc}

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


def get_kernels(spec: KernelSpec, progress: bool = False, refresh: bool = False, memory_gib: float = 5.0
                ) -> KernelResult:
    """Compute (or load) the kernels for `spec` on its training subset and test subset.

    `memory_gib` bounds the Jacobian block held at once (fewer parameter groups → fewer passes); it does
    not change the result, so it is not part of the cache key.
    """
    spec.validate()
    task = load_task(spec.dataset, spec.data_dir, max_train=spec.max_train)
    key_payload = {"spec": spec.identity(), "data": task.fingerprint(), "code": _code_hash(),
                   "model": model_fingerprint(spec.model, spec.cache_dir)}
    key = hashlib.sha256(json.dumps(key_payload, sort_keys=True).encode()).hexdigest()[:20]
    root = resolve_cache_dir(spec.cache_dir) / "ntk"
    path = root / f"{spec.dataset}-{spec.setting}-{spec.params}-n{spec.n}-s{spec.seed}-{key}.npz"
    z = None if refresh else load_npz(path)
    if z is not None:
        parts = KernelParts(z["p_scalar"], z["F"], z["logits0"], z["labels"], int(z["n_train"]),
                            int(z["backward_passes"]), int(z["parameter_groups"]), int(z["n_parameters"]))
        return KernelResult(spec, parts, z["train_idx"], z["eval_idx"], float(z["seconds"]),
                            float(z["peak_rss_gib"]), True, path)
    start = time.perf_counter()
    model, enc_train, enc_test = _setting_inputs(spec, task)
    train_idx, eval_idx = _subsets(len(enc_train), len(enc_test), spec.n, spec.seed)
    from tqdm import tqdm

    bar = tqdm(desc=f"NTK {spec.dataset}/{spec.setting}", disable=not progress, leave=False)
    parts = compute_kernels(model, enc_train, train_idx, enc_test, eval_idx, embeddings=spec.embeddings,
                            memory_gib=memory_gib, seed=spec.seed, progress=bar, subset=spec.params)
    bar.close()
    seconds, rss = time.perf_counter() - start, peak_rss_gib()
    save_npz(path, p_scalar=parts.p_scalar, F=parts.F, logits0=parts.logits0, labels=parts.labels,
             n_train=parts.n_train, backward_passes=parts.backward_passes, parameter_groups=parts.parameter_groups,
             n_parameters=parts.n_parameters, train_idx=train_idx, eval_idx=eval_idx, seconds=seconds,
             peak_rss_gib=rss)
    return KernelResult(spec, parts, train_idx, eval_idx, seconds, rss, False, path)


def linearization_check(spec: KernelSpec, result: KernelResult, target_change: float = 0.05) -> dict:
    """Eq. (1) in action: one full-batch gradient step on the training subset (eval mode, plain SGD);
    the logit change of the evaluation examples predicted by the kernel against the one measured.

    The step size is chosen so that the largest predicted change is `target_change` logits.
    Returns {"predicted": (n_eval, C), "measured": (n_eval, C), "lr": η, "relative_error": ‖m − p‖/‖p‖};
    cached beside the kernel file.
    """
    import inspect

    code = hashlib.sha256(inspect.getsource(_linearization_step).encode()).hexdigest()[:8]
    cached = result.path.with_name(result.path.stem + f"-step{target_change:g}-{code}.npz")
    z = load_npz(cached)
    if z is not None:
        return {"predicted": z["predicted"], "measured": z["measured"], "lr": float(z["lr"]),
                "relative_error": float(z["relative_error"])}
    out = _linearization_step(spec, result, target_change)
    save_npz(cached, **out)
    return out


def _linearization_step(spec: KernelSpec, result: KernelResult, target_change: float) -> dict:
    model, enc_train, enc_test = _setting_inputs(spec, load_task(spec.dataset, spec.data_dir, max_train=spec.max_train))
    n = result.parts.n_train
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
        batch = enc_train.batch([i])
        loss = loss_fn(stepped(**batch), torch.from_numpy(enc_train.labels[[i]])) / n
        loss.backward()
    with torch.no_grad():
        for param in params:
            if param.grad is not None:
                param -= lr * param.grad
    with torch.no_grad():
        before = torch.cat([model(**enc_test.batch([i])) for i in result.eval_idx]).double().numpy()
        after = torch.cat([stepped(**enc_test.batch([i])) for i in result.eval_idx]).double().numpy()
    measured, predicted = after - before, lr * unit
    return {"predicted": predicted, "measured": measured, "lr": float(lr),
            "relative_error": float(np.linalg.norm(measured - predicted) / np.linalg.norm(predicted))}


def ntk_benchmark(model: str = DEFAULT_MODEL, n: int = 64, dataset: str = "cb", memory_gib: float = 5.0) -> dict:
    """Time and memory of the exact kernels for FT and LoRA on `dataset`, fresh (no cache); prints a table."""
    import tempfile as _tempfile

    rows = {}
    with _tempfile.TemporaryDirectory() as cache:
        for setting in ("lp_ft", "lora"):
            result = get_kernels(KernelSpec(dataset=dataset, setting=setting, n=n, model=model, cache_dir=cache),
                                 memory_gib=memory_gib)
            enc = build_classifier(model, 3, 0).encoder.config
            rows[setting] = {"seconds": result.seconds, "peak_rss_gib": result.peak_rss_gib,
                             "backward_passes": result.parts.backward_passes,
                             "authors_backward_passes": result.authors_backward_passes(enc.hidden_size,
                                                                                       enc.num_hidden_layers),
                             "parameter_groups": result.parts.parameter_groups,
                             "parameters": result.parts.n_parameters}
    print(f"NTK benchmark: {model}, {dataset}, N = {n} train + {n} test examples, length ≤ 128, "
          f"{torch.get_num_threads()} threads, Jacobian block ≤ {memory_gib:g} GiB")
    print(f"{'setting':<8} {'seconds':>8} {'peak RSS GiB':>13} {'params':>10} {'groups':>7} "
          f"{'backward passes':>16} {'authors method':>15}")
    for setting, r in rows.items():
        print(f"{setting:<8} {r['seconds']:8.1f} {r['peak_rss_gib']:13.2f} {r['parameters']:10d} "
              f"{r['parameter_groups']:7d} {r['backward_passes']:16d} {r['authors_backward_passes']:15d}")
    return rows


def kernel_table(results: dict, dataset: str):
    """Paper Tables 2 / 9 for one dataset: rank, Frobenius norm, kernel-regression accuracy and FT ratio.

    `results` maps a label (e.g. "LP-FT (C = 100)") to a `KernelResult`; the first one supplies Pre-train E.
    Accuracies are in %: the paper's per-logit accuracy, and the argmax class accuracy of the same fit.
    """
    import pandas as pd

    from .paper import TABLE2_9_KERNELS

    paper = TABLE2_9_KERNELS.get(dataset, {})
    rows = []

    def row(label, kernel, result, which, paper_key, ratio=None):
        st = result.statistics(which)
        ref = paper.get(paper_key)
        rows.append({"method": label, "kernel": kernel, "rank (fp32 tol.)": st["rank_fp32"],
                     "rank (fp64 tol.)": st["rank_fp64"], "FN": f"{st['fn']:.3g}",
                     "acc train/test (per-logit)": f"{100 * st['per_logit_train']:.2f} / {100 * st['per_logit_test']:.2f}",
                     "acc train/test (argmax)": f"{100 * st['argmax_train']:.2f} / {100 * st['argmax_test']:.2f}",
                     "FT ratio": "" if ratio is None else f"{ratio:.4f}",
                     "paper rank": ref[0] if ref else None, "paper FN": f"{ref[1]:.3g}" if ref else None,
                     "paper acc (per-logit)": f"{ref[2]:.2f} / {ref[3]:.2f}" if ref else None,
                     "paper FT ratio": "" if not ref or ref[4] is None else f"{ref[4]:.4f}"})

    first = next(iter(results.values()))
    row("–", "Pre-train E", first, "P", ("pretrained", "P"))
    for label, result in results.items():
        setting = result.spec.setting
        row(label, "FT E", result, "F", (setting, "F"), result.ft_ratio())
        row(label, "NTK", result, "NTK", (setting, "NTK"))
    return pd.DataFrame(rows).set_index(["method", "kernel"])


def setting_label(spec: KernelSpec) -> str:
    from .paper import METHOD_LABELS
    from .study import lp_label

    return METHOD_LABELS[spec.setting] + (f" ({lp_label(spec.lp_C)})" if spec.setting.startswith("lp") else "")


def kernel_grid(dataset: str, settings, lp_Cs, **spec_kwargs) -> dict:
    """Kernels for each setting (LP-headed settings once per LP regularisation), keyed by `setting_label`.

    Prints one line per kernel: computed or from the cache, backward passes and peak memory.
    """
    results, lines = {}, []
    for setting in settings:
        for lp_C in (lp_Cs if setting.startswith("lp") else lp_Cs[:1]):
            spec = KernelSpec(dataset=dataset, setting=setting, lp_C=lp_C, **spec_kwargs)
            result = get_kernels(spec)
            results[setting_label(spec)] = result
            source = "from the cache" if result.cache_hit else "computed"
            lines.append(f"{dataset} {setting_label(spec):<28} {source}: {result.seconds:.0f} s, "
                         f"{result.parts.backward_passes} backward passes over {result.parts.n_parameters:,} "
                         f"parameters, peak RSS {result.peak_rss_gib:.1f} GiB")
    print("\n".join(lines))
    return results


def linearization_checks(results: dict, lp_C, target_change: float = 0.05) -> dict:
    """`linearization_check` for FT and for LP-FT with the given LP regularisation, keyed by setting."""
    out = {}
    for result in results.values():
        setting = result.spec.setting
        if setting == "ft" or (setting == "lp_ft" and result.spec.lp_C == lp_C):
            out[setting] = linearization_check(result.spec, result, target_change)
    return out


def lora_init_variance(model: str = DEFAULT_MODEL, r: int = 8, cache_dir: str | None = None) -> dict:
    """Variance of peft's LoRA A initialisation: theory (kaiming-uniform, a = √5: U(±1/√d_in), var 1/(3 d_in))
    and the empirical variance of the A matrices of a freshly built model."""
    m = build_classifier(model, 3, seed=0, lora=True, lora_r=r, lora_alpha=r, cache_dir=cache_dir)
    a = torch.cat([p.detach().reshape(-1) for n, p in m.named_parameters() if "lora_A" in n])
    d_in = m.encoder.config.hidden_size
    return {"d_in": d_in, "theory": 1.0 / (3 * d_in), "empirical": float(a.var()),
            "distribution": f"U(−1/√{d_in}, 1/√{d_in}) (kaiming-uniform, a = √5)"}


def lora_kernel_scale(lora: KernelResult, ft_query_value: KernelResult, sigma2: float) -> dict:
    """Prop. 4.4 layer by layer: F^LoRA ≈ σ² r (α/r)² F^FT restricted to the query/value weights.

    Fits s* = ⟨F^LoRA, F^FT_qv⟩ / ⟨F^FT_qv, F^FT_qv⟩ on the train×train blocks; returns it with the
    prediction and the relative residual ‖F^LoRA − s* F^FT_qv‖ / ‖F^LoRA‖.
    """
    F_l, F_f = lora.blocks("F")[0], ft_query_value.blocks("F")[0]
    scale = float(np.sum(F_l * F_f) / np.sum(F_f * F_f))
    r, alpha = lora.spec.lora_r, lora.spec.lora_alpha
    return {"r": r, "alpha": alpha, "fitted": scale, "predicted": sigma2 * r * (alpha / r) ** 2,
            "relative_residual": float(np.linalg.norm(F_l - scale * F_f) / np.linalg.norm(F_l))}


def lora_scale_table(kernels: dict, query_value: dict, lp_C, sigma2: float):
    """Prop. 4.4 per dataset for LoRA vs FT and LP-LoRA vs LP-FT: P gap, fitted and predicted F scale.

    `kernels[d]` and `query_value[d]` map labels (as `kernel_grid` makes them) to KernelResults.
    Returns (DataFrame, {dataset: [lora_kernel_scale dicts]}).
    """
    import pandas as pd

    from .study import lp_label

    rows, scales = [], {}
    for d in kernels:
        scales[d] = []
        for lora_label, ft_label in (("LoRA", "FT"), (f"LP-LoRA ({lp_label(lp_C)})", f"LP-FT ({lp_label(lp_C)})")):
            if lora_label not in kernels[d] or ft_label not in query_value[d]:
                continue
            s = lora_kernel_scale(kernels[d][lora_label], query_value[d][ft_label], sigma2)
            scales[d].append(s)
            p_gap = np.abs(kernels[d][lora_label].parts.p_scalar - query_value[d][ft_label].parts.p_scalar).max()
            rows.append({"dataset": d, "pair": f"{lora_label} vs {ft_label}", "max |P^LoRA − P^FT|": f"{p_gap:.1e}",
                         "fitted scale s*": f"{s['fitted']:.3g}", "σ² r (α/r)²": f"{s['predicted']:.3g}",
                         "s* / prediction": f"{s['fitted'] / s['predicted']:.2f}",
                         "‖F^LoRA − s* F^FT_qv‖ / ‖F^LoRA‖": f"{s['relative_residual']:.2f}"})
    return pd.DataFrame(rows).set_index(["dataset", "pair"]), scales


def lora_rank_sweep(dataset: str, ranks, seeds, settings: dict, kernel_args: dict, ft_query_value: KernelResult,
                    sigma2: float):
    """LoRA with r ∈ `ranks` and α = r: test accuracy and feature change (runs), fitted kernel scale against
    FT's query/value kernel and its prediction σ² r. One row per rank."""
    import pandas as pd

    from .claims import fmt
    from .study import Study, feature_stats

    rows = []
    for r in ranks:
        study = Study(datasets=[dataset], methods=["lora"], seeds=seeds,
                      settings={**settings, "lora_r": int(r), "lora_alpha": float(r)}).run(progress=False)
        result = get_kernels(KernelSpec(dataset=dataset, setting="lora", lora_r=int(r), lora_alpha=float(r),
                                        **kernel_args))
        s = lora_kernel_scale(result, ft_query_value, sigma2)
        acc = 100 * study.values(dataset, "lora", "test.accuracy")
        diff = study.values(dataset, "lora", lambda run: feature_stats(run)["Diff"])
        rows.append({"r": int(r), "test accuracy (%)": fmt(acc), "Diff(F)": fmt(diff),
                     "fitted scale s*": s["fitted"], "σ² r": s["predicted"],
                     "acc_mean": float(acc.mean()), "diff_mean": float(diff.mean())})
    return pd.DataFrame(rows).set_index("r")
