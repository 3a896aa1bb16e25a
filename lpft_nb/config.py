"""Typed, validated run configuration.

A *run* is one (dataset, method, model, hyper-parameters, data caps, seed). `RunConfig` is the single
place where its settings are named, typed and checked; everything else (CLI, parameter files, pages)
goes through `RunConfig.from_dict`, so a typo or a bad value fails with one clear line before any compute.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import yaml

DATASETS = ("cb", "rte", "amazon")
EVAL_ONLY_DATASETS = ("dynasent", "semeval", "sst5")
METHODS = ("lp", "ft", "lp_ft", "lora", "lp_lora")
LP_HEAD_METHODS = ("lp", "lp_ft", "lp_lora")  # methods whose head comes from the linear probe
LP_BINARY_HEADS = ("paper", "exact")
DEFAULT_MODEL = "all-MiniLM-L6-v2"
TINY_MODEL = "tiny-random-bert"

# Paper Table 6 (batch size, learning rate) per method and dataset.
PAPER_HPARAMS: dict[str, dict[str, tuple[int, float]]] = {
    "ft": {"cb": (16, 5e-5), "rte": (16, 1e-5), "amazon": (16, 1e-5)},
    "lora": {"cb": (16, 1e-3), "rte": (16, 1e-3), "amazon": (16, 1e-3)},
    "lp_ft": {"cb": (8, 5e-6), "rte": (8, 1e-5), "amazon": (8, 1e-6)},
    "lp_lora": {"cb": (8, 1e-4), "rte": (8, 5e-4), "amazon": (8, 5e-4)},
}


def lp_label(lp_C) -> str:
    """How the book names an LP regularisation: 'C chosen by CV' or 'C = 100'."""
    return "C chosen by CV" if lp_C == "cv" else f"C = {lp_C:g}"


class ConfigError(ValueError):
    """A bad setting: the message is one line that says what is wrong and what is valid."""


@dataclass(frozen=True)
class RunConfig:
    """Settings of one training run. `None` for lr / batch_size means the paper's Table 6 value."""

    dataset: str = "cb"
    method: str = "lp_ft"
    seed: int = 1
    model: str = DEFAULT_MODEL
    epochs: int = 10
    lr: float | None = None
    batch_size: int | None = None
    eval_batch_size: int = 32
    max_length: int = 128
    max_train: int | None = None
    max_eval: int | None = None
    max_per_class: int | None = None
    subset_seed: int = 0
    lora_r: int = 8
    lora_alpha: float = 8.0
    head_scale: float = 1.0
    scale_bias: bool = True
    lp_C: float | str = "cv"
    lp_binary_head: str = "paper"
    data_dir: str | None = None
    cache_dir: str | None = None

    # ---- construction -------------------------------------------------------------------------
    @classmethod
    def from_dict(cls, values: dict[str, Any], source: str = "config") -> RunConfig:
        """Build from a mapping, rejecting unknown keys and wrong types (message names `source`)."""
        if not isinstance(values, dict):
            raise ConfigError(f"{source}: expected a mapping of settings, got {type(values).__name__}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ConfigError(
                f"{source}: unknown key(s) {', '.join(unknown)}; valid keys: {', '.join(sorted(known))}"
            )
        coerced = {k: coerce(k, v, source) for k, v in values.items()}
        cfg = cls(**coerced)
        cfg.validate(source)
        return cfg

    @classmethod
    def from_yaml(cls, path: str | Path, **overrides: Any) -> RunConfig:
        return cls.from_dict({**load_yaml_mapping(path), **overrides}, source=str(path))

    def replace(self, **changes: Any) -> RunConfig:
        return RunConfig.from_dict({**self.to_dict(), **changes})

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    # ---- validation ---------------------------------------------------------------------------
    def validate(self, source: str = "config") -> None:
        def bad(key: str, msg: str) -> ConfigError:
            return ConfigError(f"{source}: {key}={getattr(self, key)!r} {msg}")

        if self.dataset not in DATASETS:
            raise bad("dataset", f"is not a training dataset; valid: {', '.join(DATASETS)}")
        if self.method not in METHODS:
            raise bad("method", f"is unknown; valid: {', '.join(METHODS)}")
        if self.lp_binary_head not in LP_BINARY_HEADS:
            raise bad("lp_binary_head", f"is unknown; valid: {', '.join(LP_BINARY_HEADS)}")
        if isinstance(self.lp_C, str) and self.lp_C != "cv":
            raise bad("lp_C", "must be 'cv' or a positive number")
        if not isinstance(self.lp_C, str) and not self.lp_C > 0:
            raise bad("lp_C", "must be 'cv' or a positive number")
        for key in ("epochs", "eval_batch_size", "max_length", "lora_r"):
            if getattr(self, key) < 1:
                raise bad(key, "must be >= 1")
        for key in ("seed", "subset_seed"):  # numpy and scikit-learn reject negative seeds
            if getattr(self, key) < 0:
                raise bad(key, "must be >= 0")
        for key in ("max_train", "max_eval", "max_per_class", "batch_size"):
            if getattr(self, key) is not None and getattr(self, key) < 1:
                raise bad(key, "must be >= 1 or null")
        for key in ("lr", "lora_alpha", "head_scale"):
            value = getattr(self, key)
            if value is not None and not value > 0:
                raise bad(key, "must be > 0")
        if self.max_length > 512:
            raise bad("max_length", "must be <= 512 (the encoders' position limit)")

    # ---- derived values -----------------------------------------------------------------------
    @property
    def trains_backbone(self) -> bool:
        return self.method != "lp"

    @property
    def uses_lp_head(self) -> bool:
        return self.method in LP_HEAD_METHODS

    @property
    def uses_lora(self) -> bool:
        return self.method in ("lora", "lp_lora")

    def resolved_lr(self) -> float:
        if self.lr is not None:
            return self.lr
        return PAPER_HPARAMS[self.method][self.dataset][1] if self.method != "lp" else 0.0

    def resolved_batch_size(self) -> int:
        if self.batch_size is not None:
            return self.batch_size
        return PAPER_HPARAMS[self.method][self.dataset][0] if self.method != "lp" else 8

    def resolved_data_dir(self) -> Path:
        return resolve_data_dir(self.data_dir)

    def resolved_cache_dir(self) -> Path:
        return resolve_cache_dir(self.cache_dir)

    def identity(self) -> dict[str, Any]:
        """The settings that decide the run's result (paths excluded, defaults resolved)."""
        ident = self.to_dict()
        ident.pop("data_dir")
        ident.pop("cache_dir")
        ident["lr"] = self.resolved_lr()
        ident["batch_size"] = self.resolved_batch_size()
        if self.method == "lp":  # no gradient training: these settings do not enter
            for key in ("epochs", "lr", "batch_size", "lora_r", "lora_alpha"):
                ident.pop(key)
        elif not self.uses_lora:
            ident.pop("lora_r")
            ident.pop("lora_alpha")
        if not self.uses_lp_head:
            ident.pop("lp_C")
            ident.pop("lp_binary_head")
        return ident


# ---- typing helpers ---------------------------------------------------------------------------
_INT_KEYS = {"seed", "epochs", "batch_size", "eval_batch_size", "max_length", "max_train", "max_eval",
             "max_per_class", "subset_seed", "lora_r"}
_FLOAT_KEYS = {"lr", "lora_alpha", "head_scale"}
_STR_KEYS = {"dataset", "method", "model", "lp_binary_head", "data_dir", "cache_dir"}
_BOOL_KEYS = {"scale_bias"}
_NULLABLE = {"lr", "batch_size", "max_train", "max_eval", "max_per_class", "data_dir", "cache_dir"}


def coerce(key: str, value: Any, source: str = "config") -> Any:
    """Check one value's type (ints stay ints, numbers become floats); raise ConfigError if wrong."""

    def wrong(expected: str) -> ConfigError:
        return ConfigError(f"{source}: {key}={value!r} has type {type(value).__name__}; expected {expected}")

    if value is None:
        if key in _NULLABLE:
            return None
        raise wrong("a value, not null")
    if key in _INT_KEYS:
        if isinstance(value, bool) or not isinstance(value, int):
            raise wrong("an integer")
        return value
    if key in _FLOAT_KEYS:
        if isinstance(value, str) and _looks_numeric(value):  # YAML 1.1 reads 5e-5 as a string
            return float(value)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise wrong("a number")
        return float(value)
    if key in _BOOL_KEYS:
        if not isinstance(value, bool):
            raise wrong("true or false")
        return value
    if key in _STR_KEYS:
        if not isinstance(value, str):
            raise wrong("a string")
        return value
    if key == "lp_C":
        if isinstance(value, str):
            return float(value) if _looks_numeric(value) else value
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise wrong("'cv' or a positive number")
        return float(value)
    raise ConfigError(f"{source}: unknown key {key}")


def parse_assignment(text: str) -> tuple[str, Any]:
    """Parse a CLI `key=value` (value read as YAML, so 5e-5 is a number and null is None)."""
    if "=" not in text:
        raise ConfigError(f"--set {text!r}: expected key=value")
    key, raw = text.split("=", 1)
    try:
        value = yaml.safe_load(raw) if raw != "" else None
    except yaml.YAMLError:
        value = raw
    if isinstance(value, str) and _looks_numeric(value):
        value = float(value)
    return key.strip(), value


def _looks_numeric(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def load_yaml_mapping(path: str | Path, error: type[ConfigError] = ConfigError) -> dict[str, Any]:
    """A YAML file holding a mapping (empty file → {}); any problem is one line naming the file."""
    path = Path(path)
    if not path.is_file():
        raise error(f"{path}: parameter file not found")
    try:
        values = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        raise error(f"{path}: not valid YAML ({str(err).splitlines()[0]})") from None
    if not isinstance(values, dict):
        raise error(f"{path}: expected a mapping of settings, got {type(values).__name__}")
    return values


def _resolve_folder(setting: str | None, env_var: str, default: Path) -> Path:
    value = setting or os.environ.get(env_var)
    return (Path(value).expanduser() if value else default).resolve()


REPO_ROOT = Path(__file__).resolve().parent.parent


def default_data_dir() -> Path:
    """Where `python -m lpft_nb book` and `data download` put the data when no folder is set:
    ``$XDG_CACHE_HOME/lpft-book/data`` (``~/.cache/lpft-book/data``)."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache").resolve() / "lpft-book" / "data"


def resolve_data_dir(data_dir: str | None) -> Path:
    """The data folder: the setting, else $LPFT_DATA_DIR, else `default_data_dir()` (filled by `data download`)."""
    return _resolve_folder(data_dir, "LPFT_DATA_DIR", default_data_dir())


def resolve_cache_dir(cache_dir: str | None) -> Path:
    """The run cache: the setting, else $LPFT_CACHE_DIR, else .lpft_cache in the repository."""
    return _resolve_folder(cache_dir, "LPFT_CACHE_DIR", REPO_ROOT / ".lpft_cache")
