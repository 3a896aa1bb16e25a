"""One training run, end to end, and the on-disk cache that lets pages share runs.

A cache entry is keyed by a hash of (the run's settings, the data files' contents, the model's files,
and the source code of this package), so a changed setting or a change to the helpers never serves a
stale result. An entry is served only when its files load and fit their schema (types, and array shapes
that match the data); any other entry is recomputed, never served.

Nothing finished is thrown away before its replacement exists: the device is resolved before any entry is
touched, a new entry is written into a temporary folder beside the old one and renamed over it (the old
one is moved aside first and removed only after). Temporary folders carry their writer's host and process
id; one whose writer is dead (on this host) or that is a day old is cleaned up when a run starts, and an
old entry moved aside by a writer that died before its rename is put back.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import shutil
import socket
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
SPLIT_FIELDS = ("accuracy", "macro_f1", "n")


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
    if cfg.uses_lp_head or cfg.head_norm_to == "lp":
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
        if cfg.head_norm_to == "lp":  # keep the random head's direction, take the LP head's norm
            with torch.no_grad():
                factor = probe.weight_norm / metrics["head_norm_random"]
                model.head.weight.mul_(factor)
                model.head.bias.mul_(factor)
        else:
            model.set_head(probe.weight, probe.bias)
        if cfg.head_norm_to == "random":  # keep the LP head's direction, take the random head's norm
            with torch.no_grad():
                factor = metrics["head_norm_random"] / probe.weight_norm
                model.head.weight.mul_(factor)
                model.head.bias.mul_(factor)
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
    last_step: dict[str, np.ndarray] = {}

    def keep_last_step(trained) -> None:  # Diff(F) at a fixed step: the features after the last step
        for name in feature_splits:
            last_step[name] = predict(trained, enc[name], cfg.eval_batch_size, precision=cfg.precision)[1]

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
                at_last_step=keep_last_step,
            )
        )
        metrics["best_epoch"] = history["best_epoch"]
        metrics["last_epoch"] = cfg.epochs
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
            arrays[f"features_last_{name}"] = last_step.get(name, feats)
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


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_numbers(value) -> bool:
    return isinstance(value, list) and all(_is_number(v) for v in value)


def _split_problem(name: str, value, n: int) -> str | None:
    if not isinstance(value, dict) or not all(_is_number(value.get(k)) for k in SPLIT_FIELDS):
        return f"metrics {name} is not {{accuracy, macro_f1, n}} of numbers"
    if value["n"] != n:
        return f"metrics {name} counts {value['n']} examples, the data {n}"
    return None


def schema_problem(cfg: RunConfig, data: TaskData, metrics, history, arrays: dict) -> str | None:
    """Why an entry's contents cannot be the run of `cfg` on `data` (a missing field, a wrong type, an
    array whose shape or labels do not fit the data), or None when they can. Shapes: logits (n, K),
    labels (n,), features (n, d), head weight (K, d) and bias (K,), K classes, n examples of the split."""
    if not isinstance(metrics, dict) or not isinstance(history, dict):
        return "metrics or history is not a mapping"
    lacking = (set(METRIC_FIELDS) - set(metrics)) | (set(ARRAY_FIELDS) - set(arrays))
    if lacking:
        return f"entry lacks {sorted(lacking)}"
    numbers = [k for k in METRIC_FIELDS if k not in ("data", "val", "test", "ood")]
    if not all(_is_number(metrics[k]) for k in numbers):
        return f"metrics {', '.join(numbers)} must be numbers"
    rows = metrics["data"]
    if not isinstance(rows, list) or len(rows) < 3 or not all(isinstance(r, dict) and "n" in r for r in rows):
        return "metrics data is not one row per split"
    splits = {"train": data.train, **data.eval_splits()}
    if not isinstance(metrics["ood"], dict) or set(metrics["ood"]) != set(data.ood):
        return f"metrics ood must name {sorted(data.ood)}"
    for name, split in splits.items():
        if name != "train":
            problem = _split_problem(
                name, metrics["ood"][name] if name in data.ood else metrics[name], len(split)
            )
            if problem:
                return problem
        labels = arrays.get("labels_train" if name == "train" else f"labels_{name}")
        if labels is None or labels.shape != (len(split),) or not np.array_equal(labels, split.labels):
            return f"labels of {name} do not match the data"
    k = data.num_classes
    weight = arrays["head_weight_init"]
    if weight.ndim != 2 or weight.shape[0] != k:
        return f"head_weight_init has shape {weight.shape}, not ({k}, d)"
    d = weight.shape[1]
    shapes = {"head_weight_final": (k, d), "head_bias_init": (k,), "head_bias_final": (k,)}
    for name, split in splits.items():
        if name != "train":
            shapes[f"logits_{name}"] = (len(split), k)
    for name in (*FEATURE_SPLITS, *data.ood):
        for when in ("before", "after"):
            shapes[f"features_{when}_{name}"] = (len(splits[name]), d)
    if cfg.uses_lp_head:
        shapes["features_before_train"] = (len(data.train), d)
    wrong = [
        f"{a} {arrays[a].shape if a in arrays else 'missing'}"
        for a, s in shapes.items()
        if a not in arrays or arrays[a].shape != s
    ]
    if wrong:
        return f"arrays of the wrong shape: {', '.join(wrong)}"
    if cfg.uses_lp_head:
        lp = metrics.get("lp")
        if not isinstance(lp, dict) or not _is_number(lp.get("C")) or not isinstance(lp.get("cv"), bool):
            return "metrics lp lacks C (a number) or cv (a bool)"
        if not _is_number(lp.get("train_accuracy")) or "lp_path" not in history:
            return "metrics lp lacks train_accuracy, or history lacks lp_path"
    if cfg.trains_backbone:
        epoch = metrics.get("best_epoch")
        if not isinstance(epoch, int) or isinstance(epoch, bool) or history.get("best_epoch") != epoch:
            return "best_epoch is not the same integer in metrics and history"
        if not all(_is_numbers(history.get(key)) for key in ("loss", "lr", "val_accuracy", "head_norm")):
            return "history loss, lr, val_accuracy or head_norm is not a list of numbers"
    return None


def _read_entry(path: Path, cfg: RunConfig, data: TaskData) -> RunResult | None:
    """Load a complete entry, or None when any file is missing, unreadable or off its schema (the entry is
    then recomputed and replaced)."""
    try:
        meta = json.loads((path / "meta.json").read_text())
        if not isinstance(meta, dict) or meta.get("complete") is not True:
            raise ValueError("incomplete")
        metrics = json.loads((path / "metrics.json").read_text())
        history = json.loads((path / "history.json").read_text())
        with np.load(path / "arrays.npz") as npz:
            arrays = {k: npz[k] for k in npz.files}
        problem = schema_problem(cfg, data, metrics, history, arrays)
        if problem:
            raise ValueError(problem)
    except Exception:  # unreadable, truncated or of another schema: recomputed, never served
        return None
    return RunResult(config=cfg, metrics=metrics, history=history, path=path, cache_hit=True, _arrays=arrays)


TMP_PREFIX, ASIDE_PREFIX = ".tmp-", ".old-"  # a new entry being written; an old one being replaced
STALE_SECONDS = 24 * 3600  # a temporary folder this old is stale whoever wrote it (writes take seconds)


def _writer_tag() -> str:
    """`<pid>@<host>.`: who writes a temporary folder (read back by `clean_stale_temporaries`)."""
    return f"{os.getpid()}@{socket.gethostname()}."


def _writer_dead(name: str, prefix: str) -> bool:
    """Whether the process that made the temporary folder `name` has ended (known on this host only)."""
    pid, _, rest = name[len(prefix) :].partition("@")
    host = rest.split(".", 1)[0] if rest else ""
    if not pid.isdigit() or host != socket.gethostname().split(".", 1)[0]:
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except OSError:  # alive, another user's
        return False
    return False


def clean_stale_temporaries(root: Path) -> list[str]:
    """Remove the temporary folders under `root` whose writer died (or that are `STALE_SECONDS` old), and
    put back an old entry whose replacement never arrived; a live writer's folders are left alone.
    Returns the names handled."""
    handled = []
    now = time.time()
    for path in root.iterdir() if root.is_dir() else ():
        prefix = next((p for p in (TMP_PREFIX, ASIDE_PREFIX) if path.name.startswith(p)), None)
        if prefix is None:
            continue
        try:
            old = now - path.stat().st_mtime > STALE_SECONDS
        except OSError:  # removed meanwhile
            continue
        if not (old or _writer_dead(path.name, prefix)):
            continue
        entry = path.name.rsplit(".", 1)[-1] if prefix == ASIDE_PREFIX else ""  # entry names hold no dot
        if entry and not (root / entry).exists():
            os.rename(path, root / entry)  # the replacement never arrived: the old entry is kept
        else:
            shutil.rmtree(path, ignore_errors=True)
        handled.append(path.name)
    return handled


def _write_entry(
    root: Path, name: str, cfg: RunConfig, key: str, metrics: dict, history: dict, arrays: dict
) -> Path:
    """Write the entry into a temporary folder beside `root / name`, then rename it there; an entry already
    there (a refresh, or one that failed its schema) is moved aside first and removed only after."""
    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=root, prefix=TMP_PREFIX + _writer_tag()))
    final = root / name
    aside = root / f"{ASIDE_PREFIX}{_writer_tag()}{name}"
    try:
        (tmp / "config.json").write_text(json.dumps(cfg.to_dict(), indent=1))
        (tmp / "metrics.json").write_text(json.dumps(metrics, indent=1))
        (tmp / "history.json").write_text(json.dumps(history))
        np.savez(tmp / "arrays.npz", **arrays)
        (tmp / "meta.json").write_text(
            json.dumps({"complete": True, "key": key, "identity": cfg.identity(), "code": run_code_key()})
        )
        try:
            os.rename(final, aside)
        except FileNotFoundError:  # no entry there yet
            pass
        try:
            os.rename(tmp, final)
        except OSError:  # another writer's entry appeared meanwhile: keep it
            shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(aside, ignore_errors=True)
        return final
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        if aside.exists() and not final.exists():
            os.rename(aside, final)
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
    """The run for `cfg`: from the cache when an entry with the same key exists and fits its schema, else
    trained now. A cached run is served on any machine; before training, the device is resolved (one line
    when this machine lacks it) before any entry is touched. `refresh` retrains and replaces the entry
    only once the new one is written (an error, a crash or Ctrl-C leave the old one as it was). Every call
    checks the data files against their pins (`data_verified` in the metrics; a warning when they differ)."""
    data = _load_data(cfg)
    _check_classes(cfg, data)
    verified = data_verified(cfg, data)
    key = run_key(cfg, data)
    root = ensure_writable(cfg.resolved_cache_dir() / "runs")
    clean_stale_temporaries(root)
    path = root / _entry_name(cfg, key)
    if path.exists() and not refresh:
        hit = _read_entry(path, cfg, data)
        if hit is not None:
            hit.metrics["data_verified"] = verified
            return hit
    resolve_device(cfg.device)  # before anything is trained or replaced
    metrics, history, arrays = execute_run(cfg, data, progress=progress)
    final = _write_entry(root, path.name, cfg, key, metrics, history, arrays)
    return RunResult(
        config=cfg, metrics=metrics, history=history, path=final, cache_hit=False, _arrays=arrays
    )


_UNPINNED: dict[tuple[str, str], list[str]] = {}  # (data folder, contents) -> files off their pin


def data_verified(cfg: RunConfig, data: TaskData) -> bool:
    """Whether every data file the run reads matches its pinned sha256 (hashed once per process and file
    contents). When not, a warning on stderr, once per process (each command) and data folder contents:
    the run goes on, served or trained (a user may use data of their own on purpose), and records it."""
    memo = (str(cfg.resolved_data_dir()), data.fingerprint())
    if memo not in _UNPINNED:
        _UNPINNED[memo] = changed = unpinned_files(cfg.resolved_data_dir(), data.files)
        if changed:
            print(
                f"warning: {len(changed)} data file(s) differ from their pinned sha256 "
                f"({', '.join(changed)}); the run records data_verified: false. "
                "`python -m lpft_nb data check` says more.",
                file=sys.stderr,
            )
    return not _UNPINNED[memo]


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
