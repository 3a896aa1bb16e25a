"""Book pages and their parameter files: find pages, read a page's `parameters` cell, check a profile.

Papermill only warns about unknown parameters, so every profile file is checked here before a page
runs: each key must exist in the page's parameters cell with a compatible type, and each value that is
a run setting (or a list of them, e.g. ``seeds``) must pass `RunConfig` validation.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..config import REPO_ROOT as ROOT
from ..config import ConfigError, RunConfig, load_yaml_mapping

BOOK_DIR = ROOT / "book"
PARAMS_DIR = ROOT / "params"
PROFILES = ("smoke", "default", "paper")
# Page parameters that hold a list of run settings, and the setting each element is.
LIST_SETTINGS = {
    "datasets": "dataset",
    "methods": "method",
    "seeds": "seed",
    "lp_Cs": "lp_C",
    "head_scales": "head_scale",
    "scaling_seeds": "seed",
    "kernel_seeds": "seed",
}
# Page parameters holding one value of a run setting.
SINGLE_SETTINGS = {"scaling_dataset": "dataset", "rank_dataset": "dataset"}
# Page parameters whose value must be one of the values of another parameter of the same page.
MEMBER_OF = {"rank_dataset": "datasets"}
RUN_KEYS = set(RunConfig.model_fields)
# Page parameters (not run settings) with a smallest allowed value, checked before a page runs.
MINIMUM = {
    "n": 2,
    "path_points": 2,
    "multiplier_points": 2,
    "tsne_seed": 0,
    "lora_alpha": 1e-12,
    "step_target": 1e-12,
}
# Page parameters whose elements must come from a fixed set (other than run settings).
CHOICES = {
    "kernel_settings": ("ft", "lp_ft", "lora", "lp_lora"),
    "pages": ("dynamics", "norms", "ntk", "calibration", "lora", "boss_ood"),
}


class ParamError(ConfigError):
    """A parameter file that does not fit its page."""


def is_notebook_page(path: Path) -> bool:
    """A MyST notebook page (Jupytext front matter with a kernelspec), as opposed to a prose page."""
    head = path.read_text(encoding="utf-8")[:2000]
    return head.startswith("---") and "kernelspec:" in head


def read_page(path: Path):
    import jupytext

    return jupytext.read(str(path))


def page_parameters(path: Path) -> dict[str, Any]:
    """Names and default values of the page's single `parameters` cell (executed in isolation)."""
    nb = read_page(path)
    cells = [c for c in nb.cells if c.cell_type == "code" and "parameters" in c.metadata.get("tags", [])]
    if len(cells) != 1:
        raise ParamError(f"{path}: expected exactly one cell tagged 'parameters', found {len(cells)}")
    namespace: dict[str, Any] = {}
    exec(compile(cells[0].source, f"{path.name}:parameters", "exec"), namespace)
    return {
        k: v
        for k, v in namespace.items()
        if not k.startswith("_") and not callable(v) and type(v).__name__ != "module"
    }


def _compatible(default: Any, value: Any) -> bool:
    if default is None or value is None:
        return True
    if isinstance(default, bool) or isinstance(value, bool):
        return isinstance(default, bool) and isinstance(value, bool)
    if isinstance(default, float):
        return isinstance(value, (int, float))
    if isinstance(default, (list, tuple)):
        return isinstance(value, (list, tuple))
    return isinstance(value, type(default))


def _check_run_value(key: str, value: Any, source: str) -> None:
    try:
        _check_run_setting(key, value, source)
    except ConfigError as err:
        raise ParamError(str(err)) from None


def _check_run_setting(key: str, value: Any, source: str) -> None:
    if key in MINIMUM and key not in RUN_KEYS and value is not None and value < MINIMUM[key]:
        raise ParamError(f"{source}: {value!r} is below the smallest allowed value {MINIMUM[key]:g}")
    if key == "ranks" and (
        not value or any(not isinstance(r, int) or isinstance(r, bool) or r < 1 for r in value)
    ):
        raise ParamError(f"{source}: ranks must be a non-empty list of positive integers, got {value!r}")
    if key in CHOICES:
        bad = [v for v in value if v not in CHOICES[key]]
        if bad or not value:
            raise ParamError(f"{source}: {bad or 'empty list'} not allowed; valid: {', '.join(CHOICES[key])}")
    if key in RUN_KEYS:
        RunConfig.from_dict({key: value}, source=source)
    elif key in SINGLE_SETTINGS:
        setting = SINGLE_SETTINGS[key]
        RunConfig.from_dict({setting: value}, source=source)
    elif key in LIST_SETTINGS:
        setting = LIST_SETTINGS[key]
        if not value:
            raise ParamError(f"{source}: {key} must list at least one value")
        for item in value:
            RunConfig.from_dict({setting: item}, source=f"{source}: {key}")


SHARED_FILE = "_shared.yaml"  # run settings shared by the pages of a profile
BASE_KEY = "base"  # in a profile's _shared.yaml: the profile that fills what this one omits


def profiles(params_dir: Path = PARAMS_DIR) -> list[str]:
    """Every profile: each folder of `params_dir` (smoke, default, paper, and any of the user's)."""
    return sorted(p.name for p in params_dir.iterdir() if p.is_dir() and not p.name.startswith("."))


def base_of(profile: str, params_dir: Path = PARAMS_DIR) -> str | None:
    """The profile that fills the pages and shared settings `profile` omits: its `_shared.yaml`'s `base`,
    else `default` for a profile of the user's; the built-in profiles stand alone."""
    path = params_dir / profile / SHARED_FILE
    own = load_yaml_mapping(path, ParamError) if path.is_file() else {}
    base = own.get(BASE_KEY, None if profile in PROFILES else "default")
    if base is not None and (base == profile or not (params_dir / str(base)).is_dir()):
        raise ParamError(
            f"{path}: base {base!r} is not another profile; profiles: {', '.join(profiles(params_dir))}"
        )
    return base


def check_profile_name(profile: str, params_dir: Path = PARAMS_DIR) -> None:
    if not (params_dir / profile).is_dir():
        raise ParamError(
            f"unknown profile {profile!r}: no folder {params_dir / profile}; "
            f"profiles found: {', '.join(profiles(params_dir))}"
        )


def load_shared(profile: str, params_dir: Path = PARAMS_DIR) -> tuple[Path, dict[str, Any]]:
    """The profile's shared settings (``params/<profile>/_shared.yaml`` over its base's; {} when none)."""
    path = params_dir / profile / SHARED_FILE
    own = load_yaml_mapping(path, ParamError) if path.is_file() else {}
    base = base_of(profile, params_dir)
    inherited = load_shared(base, params_dir)[1] if base else {}
    return path, {**inherited, **{k: v for k, v in own.items() if k != BASE_KEY}}


def load_profile(page: str, profile: str, params_dir: Path = PARAMS_DIR) -> tuple[Path, dict[str, Any]]:
    """The page's own parameter file under `profile`, else under its base profile."""
    path = params_dir / profile / f"{page}.yaml"
    base = base_of(profile, params_dir)
    if not path.is_file() and base:
        return load_profile(page, base, params_dir)
    return path, load_yaml_mapping(path, ParamError)


def _source(path: Path) -> str:
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def _check_values(page: str, values: dict[str, Any], defaults: dict[str, Any], source: str) -> None:
    for key, value in values.items():
        if key not in defaults:
            raise ParamError(
                f"{source}: unknown key '{key}'; page {page!r} has parameters: {', '.join(sorted(defaults))}"
            )
        if not _compatible(defaults[key], value):
            raise ParamError(
                f"{source}: key '{key}' has type {type(value).__name__}, "
                f"but the page's default {defaults[key]!r} is {type(defaults[key]).__name__}"
            )
        _check_run_value(key, value, f"{source}: key '{key}'")


def check_profile(
    page: str, profile: str, book_dir: Path = BOOK_DIR, params_dir: Path = PARAMS_DIR
) -> dict[str, Any]:
    """Validated parameters of `page` under `profile`; raises ParamError with one line naming file and key.

    The values are the profile's `_shared.yaml` entries that the page has as parameters, overridden by the
    page's own file ``params/<profile>/<page>.yaml``.
    """
    shared_path, shared = load_shared(profile, params_dir)
    path, values = load_profile(page, profile, params_dir)
    defaults = page_parameters(book_dir / f"{page}.md")
    shared = {k: v for k, v in shared.items() if k in defaults}
    _check_values(page, shared, defaults, _source(shared_path))
    _check_values(page, values, defaults, _source(path))
    merged = {**defaults, **shared, **values}
    for key, container in MEMBER_OF.items():
        if key in merged and container in merged and merged[key] not in merged[container]:
            raise ParamError(
                f"{_source(path)}: key '{key}': {merged[key]!r} is not in {container} {merged[container]!r}"
            )
    return {**shared, **values}


def check_shared(
    profile: str, pages: list[str], book_dir: Path = BOOK_DIR, params_dir: Path = PARAMS_DIR
) -> None:
    """Every key of the profile's `_shared.yaml` is a parameter of at least one of `pages` (a typo there
    would otherwise apply to no page, silently)."""
    path, shared = load_shared(profile, params_dir)
    known = set().union(*(page_parameters(book_dir / f"{p}.md") for p in pages)) if pages else set()
    unknown = sorted(set(shared) - known)
    if unknown:
        raise ParamError(
            f"{_source(path)}: key(s) {', '.join(unknown)} are parameters of no page; "
            f"known: {', '.join(sorted(known))}"
        )
