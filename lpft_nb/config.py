"""Typed, validated run configuration, and where the data and the cache live.

A *run* is one (dataset, method, model, hyper-parameters, data caps, seed). `RunConfig` (a pydantic model:
strict types, unknown keys forbidden, finite numbers) is the single place where its settings are named,
typed and checked; everything else (CLI, parameter files, pages) goes through `RunConfig.from_dict`, so a
typo or a bad value fails with one clear line before any compute.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal, Union

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from .device import PRECISIONS, check_device_name

DATASETS = ("cb", "rte", "amazon", "sst2", "sst2_sentences")
EVAL_ONLY_DATASETS = ("dynasent", "semeval", "sst5")
METHODS = ("lp", "ft", "lp_ft", "lora", "lp_lora")
LP_HEAD_METHODS = ("lp", "lp_ft", "lp_lora")  # methods whose head comes from the linear probe
LP_BINARY_HEADS = ("paper", "exact")
HEAD_NORM_TARGETS = ("own", "random", "lp")  # `head_norm_to`: norm apart from direction (norms page)
DEFAULT_MODEL = "all-MiniLM-L6-v2"
TINY_MODEL = "tiny-random-bert"

# Paper Table 6 (batch size, learning rate) per method and dataset. `sst2_sentences` (SST-2's sentence-level
# train set, not the paper's) takes SST-2's values.
PAPER_HPARAMS: dict[str, dict[str, tuple[int, float]]] = {
    "ft": {"cb": (16, 5e-5), "rte": (16, 1e-5), "amazon": (16, 1e-5), "sst2": (32, 1e-5)},
    "lora": {"cb": (16, 1e-3), "rte": (16, 1e-3), "amazon": (16, 1e-3), "sst2": (32, 5e-4)},
    "lp_ft": {"cb": (8, 5e-6), "rte": (8, 1e-5), "amazon": (8, 1e-6), "sst2": (8, 1e-5)},
    "lp_lora": {"cb": (8, 1e-4), "rte": (8, 5e-4), "amazon": (8, 5e-4), "sst2": (8, 1e-3)},
}
for _by_dataset in PAPER_HPARAMS.values():
    _by_dataset["sst2_sentences"] = _by_dataset["sst2"]


def lp_label(lp_C: LpC) -> str:
    """How the book names an LP regularisation: 'C chosen by CV' or 'C = 100'."""
    return "C chosen by CV" if lp_C == "cv" else f"C = {lp_C:g}"


LpC = Union[float, Literal["cv"]]  # noqa: UP007  (an LP regularisation: "cv" or a fixed C > 0)


class ConfigError(ValueError):
    """A bad setting: the message is one line that says what is wrong and what is valid."""


_CHOICES = {
    "dataset": (DATASETS, "is not a training dataset"),
    "method": (METHODS, "is unknown"),
    "lp_binary_head": (LP_BINARY_HEADS, "is unknown"),
    "precision": (PRECISIONS, "is unknown"),
    "head_norm_to": (HEAD_NORM_TARGETS, "is unknown"),
}
_NUMERIC_STRING_KEYS = ("lr", "lora_alpha", "head_scale", "lp_C")  # YAML 1.1 reads 5e-5 as a string


class RunConfig(BaseModel):
    """Settings of one training run (pydantic: strict types, unknown keys rejected, frozen).

    `None` for lr / batch_size means the paper's Table 6 value. `RunConfig.model_json_schema()` is the
    settings' JSON schema (``python -m lpft_nb run --help-settings``).
    """

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True, allow_inf_nan=False)

    dataset: str = Field("cb", description="training dataset", json_schema_extra={"enum": list(DATASETS)})
    method: str = Field("lp_ft", description="training method", json_schema_extra={"enum": list(METHODS)})
    seed: int = Field(
        1, ge=0, description="seed of the head, LoRA and dropout initialisation and batch order"
    )
    model: str = Field(
        DEFAULT_MODEL, description="encoder: the embedded MiniLM, tiny-random-bert, a path, a HF name"
    )
    epochs: int = Field(10, ge=1, description="fine-tuning epochs (paper: 10)")
    lr: float | None = Field(None, gt=0, description="learning rate; null: the paper's Table 6")
    batch_size: int | None = Field(None, ge=1, description="training batch size; null: the paper's Table 6")
    eval_batch_size: int = Field(32, ge=1, description="batch size of prediction and feature extraction")
    max_length: int = Field(128, ge=1, le=512, description="tokens per example (the encoders' limit is 512)")
    max_train: int | None = Field(None, ge=1, description="cap on training examples (seeded subsample)")
    max_eval: int | None = Field(None, ge=1, description="cap on validation and test examples")
    max_per_class: int | None = Field(None, ge=1, description="cap per class of train and validation")
    subset_seed: int = Field(0, ge=0, description="seed of the capped subsamples")
    lora_r: int = Field(8, ge=1, description="LoRA rank")
    lora_alpha: float = Field(8.0, gt=0, description="LoRA alpha (scaling alpha / r)")
    head_scale: float = Field(1.0, gt=0, description="multiplier of the head at the start of the FT stage")
    scale_bias: bool = Field(True, description="whether head_scale multiplies the bias too")
    head_norm_to: str = Field(
        "own",
        description="the head's norm at the start of FT: its own; 'random': an LP head rescaled to the "
        "seed's random head's norm (lp_ft, lp_lora); 'lp': the random head rescaled to the LP head's norm "
        "(ft, lora): the direction is kept, only ‖V‖_F changes",
        json_schema_extra={"enum": list(HEAD_NORM_TARGETS)},
    )
    lp_C: float | str = Field(
        "cv", description="LP regularisation: 'cv' (the paper's cross-validation) or a C > 0"
    )
    lp_binary_head: str = Field(
        "paper",
        description="binary LP head: the authors' halved one or exact",
        json_schema_extra={"enum": list(LP_BINARY_HEADS)},
    )
    device: str = Field(
        "auto", description="auto (CUDA when available, else CPU), cpu, cuda or cuda:N; not in the cache key"
    )
    precision: str = Field(
        "fp32",
        description="fp32 (no TF32) or bf16 (autocast of forward passes); part of the cache key",
        json_schema_extra={"enum": list(PRECISIONS)},
    )
    data_dir: str | None = Field(None, description="data folder; null: $LPFT_DATA_DIR or the default folder")
    cache_dir: str | None = Field(None, description="run cache; null: $LPFT_CACHE_DIR or .lpft_cache")

    @model_validator(mode="before")
    @classmethod
    def _numbers_from_yaml_strings(cls, values: Any) -> Any:
        if isinstance(values, dict):
            values = dict(values)
            for key in _NUMERIC_STRING_KEYS:
                if isinstance(values.get(key), str) and _looks_numeric(values[key]):
                    values[key] = float(values[key])
        return values

    @field_validator("device")
    @classmethod
    def _device(cls, value: str) -> str:
        return check_device_name(value)

    @field_validator("head_norm_to")
    @classmethod
    def _head_norm_target(cls, value: str, info) -> str:
        method = info.data.get("method")
        if value == "random" and method not in ("lp_ft", "lp_lora"):
            raise ValueError("rescales an LP head: only for lp_ft and lp_lora")
        if value == "lp" and method not in ("ft", "lora"):
            raise ValueError("rescales the random head: only for ft and lora")
        return value

    @field_validator("dataset", "method", "lp_binary_head", "precision", "head_norm_to")
    @classmethod
    def _one_of(cls, value: str, info) -> str:
        valid, what = _CHOICES[info.field_name]
        if value not in valid:
            raise ValueError(f"{what}; valid: {', '.join(valid)}")
        return value

    @field_validator("lp_C")
    @classmethod
    def _lp_C(cls, value: float | str) -> LpC:
        if value != "cv" and (isinstance(value, str) or not value > 0):
            raise ValueError("must be 'cv' or a positive number")
        return value

    # ---- construction -------------------------------------------------------------------------
    @classmethod
    def from_dict(cls, values: dict[str, Any], source: str = "config") -> RunConfig:
        """Build from a mapping; any problem is a ConfigError of one line that starts with `source`."""
        if not isinstance(values, dict):
            raise ConfigError(f"{source}: expected a mapping of settings, got {type(values).__name__}")
        try:
            return cls.model_validate(values)
        except ValidationError as err:
            raise ConfigError(_one_line(err, values, source)) from None

    @classmethod
    def from_yaml(cls, path: str | Path, **overrides: Any) -> RunConfig:
        return cls.from_dict({**load_yaml_mapping(path), **overrides}, source=str(path))

    def replace(self, **changes: Any) -> RunConfig:
        return RunConfig.from_dict({**self.to_dict(), **changes})

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump()

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
        ident.pop("device")  # where a run computes does not change what it computes
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


_EXPECTED = {int: "an integer", float: "a number", bool: "true or false", str: "a string"}


def _expected(key: str) -> str:
    if key == "lp_C":
        return "'cv' or a positive number"
    annotation = RunConfig.model_fields[key].annotation
    kinds = (annotation, *getattr(annotation, "__args__", ()))
    return next(_EXPECTED[k] for k in (bool, int, float, str) if k in kinds)


def _one_line(err: ValidationError, values: dict[str, Any], source: str) -> str:
    """The first problem of a pydantic error, as one line in the words of the book's other errors."""
    errors = err.errors()
    unknown = sorted(str(e["loc"][0]) for e in errors if e["type"] == "extra_forbidden")
    if unknown:
        return (
            f"{source}: unknown key(s) {', '.join(unknown)}; "
            f"valid keys: {', '.join(sorted(RunConfig.model_fields))}"
        )
    e = errors[0]
    key = str(e["loc"][0])
    value = values.get(key)
    ctx = e.get("ctx") or {}
    if e["type"] == "value_error":
        return f"{source}: {key}={value!r} {ctx['error']}"
    bounds = {
        "greater_than_equal": (">=", "ge"),
        "greater_than": (">", "gt"),
        "less_than_equal": ("<=", "le"),
    }
    if e["type"] in bounds:
        op, name = bounds[e["type"]]
        note = " or null" if RunConfig.model_fields[key].default is None else ""
        note = " (the encoders' position limit)" if op == "<=" and key == "max_length" else note
        return f"{source}: {key}={value!r} must be {op} {ctx[name]:g}{note}"
    if e["type"] == "finite_number":
        return f"{source}: {key}={value!r} must be a finite number"
    expected = "a value, not null" if value is None else _expected(key)
    return f"{source}: {key}={value!r} has type {type(value).__name__}; expected {expected}"


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
        text = path.read_bytes().decode("utf-8")
    except OSError as err:
        raise error(f"{path}: cannot be read ({err.strerror})") from None
    except UnicodeDecodeError as err:
        raise error(f"{path}: not a text file (byte {err.start} is not UTF-8)") from None
    try:
        values = yaml.safe_load(text) or {}
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
