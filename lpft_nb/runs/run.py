"""One training run, end to end, and the on-disk cache that lets pages share runs.

A cache entry is keyed by a hash of (the run's settings, the data files' contents, the model's files,
and the source code of this package), so a changed setting or a change to the helpers never serves a
stale result. Entries are written into a temporary folder and renamed into place, so an interrupted run
leaves no entry; an entry whose files do not load is deleted and recomputed, never served.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np

from ..config import RunConfig
from ..data.files import unpinned_files
from ..data.tasks import DataError, TaskData, load_task
from ..device import environment, resolve_device
from ..model.hub import model_revision, resolve_model_path
from .cache import code_key, ensure_writable

CACHE_FORMAT = 1
# The modules a training run executes (this one and every package module it imports, transitively, at the
# top or inside a function; a test checks that the list is complete). Their source is part of every run's
# key; editing any other module (plots, pages, claim rules) does not invalidate training runs. Torch,
# transformers and scikit-learn are imported inside `execute_run`: serving a run from the cache needs none.
RUN_MODULES = (
    "lpft_nb.atomic",
    "lpft_nb.config",
    "lpft_nb.data.files",
    "lpft_nb.data.sst2",
    "lpft_nb.data.tasks",
    "lpft_nb.device",
    "lpft_nb.model.classifier",
    "lpft_nb.model.head_mechanism",
    "lpft_nb.model.hub",
    "lpft_nb.model.probe",
    "lpft_nb.model.train",
    "lpft_nb.runs.cache",
    "lpft_nb.runs.run",
)
# What every cache entry must hold to be served (an entry without them is recomputed).
METRIC_FIELDS = (
    "data",
    "head_norm_random",
    "head_norm_init",
    "bias_norm_init",
    "head_norm_final",
    "bias_norm_final",
    "val",
    "test",
    "ood",
    "seconds",
)
ARRAY_FIELDS = (
    "labels_train",
    "head_weight_init",
    "head_bias_init",
    "head_weight_final",
    "head_bias_final",
    "logits_val",
    "labels_val",
    "logits_test",
    "labels_test",
    "features_before_test",
    "features_after_test",
)
FEATURE_SPLITS = ("test",)  # plus every OOD set: features before/after training are stored for these


@functools.cache
def run_code_key() -> str:
    """`code_key` of the modules a run executes (`RUN_MODULES`), read from their files without importing
    them; once per process (the code a process runs is the code it imported)."""
    return code_key(*RUN_MODULES)


def model_fingerprint(model_name: str, cache_dir: str | None) -> str:
    """Names and sizes of the model folder's files, and its Hub revision when it is a Hugging Face snapshot
    (cheap; catches a swapped checkpoint)."""
    folder = Path(resolve_model_path(model_name, cache_dir))
    parts = sorted(f"{p.name}:{p.stat().st_size}" for p in folder.iterdir() if p.is_file())
    parts.append(f"revision:{model_revision(model_name, cache_dir)}")
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:16]


def run_key(cfg: RunConfig, data: TaskData) -> str:
    payload = {
        "format": CACHE_FORMAT,
        "config": cfg.identity(),
        "data": data.fingerprint(),
        "model": model_fingerprint(cfg.model, cfg.cache_dir),
        "code": run_code_key(),
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:20]


def _load_data(cfg: RunConfig) -> TaskData:
    return load_task(
        cfg.dataset,
        cfg.data_dir,
        max_train=cfg.max_train,
        max_eval=cfg.max_eval,
        max_per_class=cfg.max_per_class,
        subset_seed=cfg.subset_seed,
    )


@dataclass
class RunResult:
    """A finished run: its config, metrics, history, and arrays (loaded lazily from the cache folder)."""

    config: RunConfig
    metrics: dict
    history: dict
    path: Path
    cache_hit: bool = False
    _arrays: dict | None = field(default=None, repr=False)

    @cached_property
    def arrays(self) -> dict[str, np.ndarray]:
        """logits_<split>, labels_<split>, features_before/after_<split>, head_weight/bias_init/final, ..."""
        if self._arrays is not None:
            return self._arrays
        with np.load(self.path / "arrays.npz") as npz:
            return {k: npz[k] for k in npz.files}

    def summary(self) -> dict:
        """The CLI's JSON record."""
        m = self.metrics
        return {
            "dataset": self.config.dataset,
            "method": self.config.method,
            "seed": self.config.seed,
            "model": self.config.model,
            "precision": self.config.precision,
            "environment": m.get("environment"),  # device, torch, CUDA and model revision that trained it
            "cache_hit": self.cache_hit,
            "data_verified": m.get("data_verified"),
            "head_norm_random": m["head_norm_random"],
            "head_norm_init": m["head_norm_init"],
            "head_norm_final": m["head_norm_final"],
            "lp_C": m.get("lp", {}).get("C"),
            "best_epoch": m.get("best_epoch"),
            "seconds": m["seconds"],
            "metrics": {
                "val_accuracy": m["val"]["accuracy"],
                "test_accuracy": m["test"]["accuracy"],
                "test_macro_f1": m["test"]["macro_f1"],
                "ood": {name: v["accuracy"] for name, v in m["ood"].items()},
            },
            "cache_path": str(self.path),
        }


def _split_metrics(logits: np.ndarray, labels: np.ndarray) -> dict:
    from sklearn.metrics import f1_score

    pred = logits.argmax(1)
    return {
        "accuracy": float(np.mean(pred == labels)),
        "macro_f1": float(f1_score(labels, pred, average="macro", zero_division=0)),
        "n": int(len(labels)),
    }


def execute_run(
    cfg: RunConfig, data: TaskData | None = None, progress: bool = True
) -> tuple[dict, dict, dict]:
    """Train and evaluate one run on its device. Returns (metrics, history, arrays); no caching here."""
    import torch

    from ..model.classifier import build_classifier, load_tokenizer
    from ..model.probe import fit_linear_probe, probe_iteration_path
    from ..model.train import encode, fine_tune, predict

    start = time.perf_counter()
    device = resolve_device(cfg.device)
    data = data if data is not None else _load_data(cfg)
    tokenizer = load_tokenizer(cfg.model, cfg.cache_dir)
    model = build_classifier(
        cfg.model,
        data.num_classes,
        cfg.seed,
        lora=cfg.uses_lora,
        lora_r=cfg.lora_r,
        lora_alpha=cfg.lora_alpha,
        cache_dir=cfg.cache_dir,
    ).to(device)
    enc = {"train": encode(data.train, tokenizer, cfg.max_length)}
    enc.update({name: encode(split, tokenizer, cfg.max_length) for name, split in data.eval_splits().items()})
    feature_splits = list(FEATURE_SPLITS) + list(data.ood)

    def desc(text: str) -> str | None:
        return text if progress else None

    arrays: dict[str, np.ndarray] = {"labels_train": data.train.labels}
    for name in feature_splits:
        arrays[f"features_before_{name}"] = predict(
            model, enc[name], cfg.eval_batch_size, desc=desc(f"φ0 {name}"), precision=cfg.precision
        )[1]
    history: dict = {}
    metrics: dict = {
        "data": data.summary(),
        "data_verified": data_verified(cfg, data),
        "environment": {**environment(device), "model_revision": model_revision(cfg.model, cfg.cache_dir)},
    }
    # the seed's N(0, 0.02²) head before any LP or scaling: the paper's "Pre-trained" row of Table 13
    metrics["head_norm_random"] = model.head_norms()[0]
    if cfg.uses_lp_head:
        train_feats = predict(
            model, enc["train"], cfg.eval_batch_size, desc=desc("φ0 train"), precision=cfg.precision
        )[1]
        arrays["features_before_train"] = train_feats
        probe = fit_linear_probe(
            train_feats,
            data.train.labels,
            data.num_classes,
            C=cfg.lp_C,
            binary_head=cfg.lp_binary_head,
            seed=cfg.seed,
        )
        model.set_head(probe.weight, probe.bias)
        history["lp_path"] = probe_iteration_path(
            train_feats, data.train.labels, data.num_classes, probe.C, binary_head=cfg.lp_binary_head
        )
        metrics["lp"] = {
            "C": probe.C,
            "cv": probe.cv,
            "train_accuracy": probe.train_accuracy,
            "n_iter": probe.n_iter,
            "cv_accuracy": {str(k): v for k, v in probe.cv_accuracy.items()},
            "weight_norm": probe.weight_norm,
        }
    if cfg.head_scale != 1.0:
        with torch.no_grad():
            model.head.weight.mul_(cfg.head_scale)
            if cfg.scale_bias:
                model.head.bias.mul_(cfg.head_scale)
    arrays["head_weight_init"] = model.head.weight.detach().cpu().numpy().copy()
    arrays["head_bias_init"] = model.head.bias.detach().cpu().numpy().copy()
    metrics["head_norm_init"], metrics["bias_norm_init"] = model.head_norms()
    if cfg.trains_backbone:
        history.update(
            fine_tune(
                model,
                enc["train"],
                enc["val"],
                epochs=cfg.epochs,
                lr=cfg.resolved_lr(),
                batch_size=cfg.resolved_batch_size(),
                seed=cfg.seed,
                eval_batch_size=cfg.eval_batch_size,
                progress=progress,
                precision=cfg.precision,
            )
        )
        metrics["best_epoch"] = history["best_epoch"]
    metrics["head_norm_final"], metrics["bias_norm_final"] = model.head_norms()
    arrays["head_weight_final"] = model.head.weight.detach().cpu().numpy().copy()
    arrays["head_bias_final"] = model.head.bias.detach().cpu().numpy().copy()
    metrics["ood"] = {}
    for name, split_enc in enc.items():
        if name == "train":
            continue
        logits, feats = predict(
            model, split_enc, cfg.eval_batch_size, desc=desc(f"eval {name}"), precision=cfg.precision
        )
        arrays[f"logits_{name}"] = logits
        arrays[f"labels_{name}"] = split_enc.labels
        if name in feature_splits:
            arrays[f"features_after_{name}"] = feats
        split_metrics = _split_metrics(logits, split_enc.labels)
        if name in data.ood:
            metrics["ood"][name] = split_metrics
        else:
            metrics[name] = split_metrics
    metrics["seconds"] = time.perf_counter() - start
    return metrics, history, arrays


# ---- the cache ----------------------------------------------------------------------------------
def _entry_name(cfg: RunConfig, key: str) -> str:
    return f"{cfg.dataset}-{cfg.method}-s{cfg.seed}-{key}"


def _read_entry(path: Path, cfg: RunConfig) -> RunResult | None:
    """Load a complete entry, or None (deleting it) when any file is missing or unreadable."""
    try:
        meta = json.loads((path / "meta.json").read_text())
        if not meta.get("complete"):
            raise ValueError("incomplete")
        metrics = json.loads((path / "metrics.json").read_text())
        history = json.loads((path / "history.json").read_text())
        with np.load(path / "arrays.npz") as npz:
            arrays = {k: npz[k] for k in npz.files}
        lacking = (set(METRIC_FIELDS) - set(metrics)) | (set(ARRAY_FIELDS) - set(arrays))
        if lacking or (cfg.uses_lp_head and "lp" not in metrics) or not isinstance(history, dict):
            raise ValueError(f"entry lacks {sorted(lacking)}")
    except Exception:  # unreadable, truncated or of another schema: recomputed, never served
        shutil.rmtree(path, ignore_errors=True)
        return None
    return RunResult(config=cfg, metrics=metrics, history=history, path=path, cache_hit=True, _arrays=arrays)


def _write_entry(
    root: Path, name: str, cfg: RunConfig, key: str, metrics: dict, history: dict, arrays: dict
) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=root, prefix=".tmp-"))
    try:
        (tmp / "config.json").write_text(json.dumps(cfg.to_dict(), indent=1))
        (tmp / "metrics.json").write_text(json.dumps(metrics, indent=1))
        (tmp / "history.json").write_text(json.dumps(history))
        np.savez(tmp / "arrays.npz", **arrays)
        (tmp / "meta.json").write_text(
            json.dumps({"complete": True, "key": key, "identity": cfg.identity(), "code": run_code_key()})
        )
        final = root / name
        try:
            os.rename(tmp, final)
        except OSError:  # an identical entry appeared meanwhile: keep it
            shutil.rmtree(tmp, ignore_errors=True)
        return final
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def run_entry_path(cfg: RunConfig, data: TaskData | None = None) -> Path:
    """Where the cache entry of `cfg` lives (whether or not it exists yet)."""
    data = data if data is not None else _load_data(cfg)
    return cfg.resolved_cache_dir() / "runs" / _entry_name(cfg, run_key(cfg, data))


def is_cached(cfg: RunConfig) -> bool:
    """Whether a complete cache entry for `cfg` exists (it is served by `get_run` if it loads)."""
    meta = run_entry_path(cfg) / "meta.json"
    try:
        return bool(json.loads(meta.read_text()).get("complete"))
    except (OSError, ValueError):
        return False


def get_run(cfg: RunConfig, progress: bool = True, refresh: bool = False) -> RunResult:
    """The run for `cfg`: from the cache when an entry with the same key exists, else trained now (a device
    this machine lacks is then one line before any work; a cached run is served on any machine)."""
    data = _load_data(cfg)
    _check_classes(cfg, data)
    key = run_key(cfg, data)
    root = ensure_writable(cfg.resolved_cache_dir() / "runs")
    path = root / _entry_name(cfg, key)
    if path.exists() and not refresh:
        hit = _read_entry(path, cfg)
        if hit is not None:
            return hit
    if path.exists():
        shutil.rmtree(path, ignore_errors=True)
    metrics, history, arrays = execute_run(cfg, data, progress=progress)
    final = _write_entry(root, path.name, cfg, key, metrics, history, arrays)
    return RunResult(
        config=cfg, metrics=metrics, history=history, path=final, cache_hit=False, _arrays=arrays
    )


_WARNED: set[str] = set()


def data_verified(cfg: RunConfig, data: TaskData) -> bool:
    """Whether every data file the run reads matches its pinned sha256; when not, one warning per data
    folder on stderr (the run goes on: a user may train on data of their own on purpose)."""
    changed = unpinned_files(cfg.resolved_data_dir(), data.files)
    if changed and str(cfg.resolved_data_dir()) not in _WARNED:
        _WARNED.add(str(cfg.resolved_data_dir()))
        print(
            f"warning: {len(changed)} data file(s) differ from their pinned sha256 ({', '.join(changed)}); "
            "the run records data_verified: false. `python -m lpft_nb data check` says more.",
            file=sys.stderr,
        )
    return not changed


def _check_classes(cfg: RunConfig, data: TaskData) -> None:
    """Every class needs a training example (the LP head and the head's rows are per class)."""
    counts = data.train.class_counts(data.num_classes)
    missing = [name for name, n in zip(data.class_names, counts) if n == 0]
    if missing:
        caps = ", ".join(f"{k}={getattr(cfg, k)}" for k in ("max_train", "max_per_class") if getattr(cfg, k))
        raise DataError(
            f"{cfg.dataset}: the training split has no example of class {', '.join(map(repr, missing))}"
            f"{f' ({caps})' if caps else ''}; raise the cap or use data that hold every class"
        )
