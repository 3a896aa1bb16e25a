"""Book pages and their parameter files: find pages, read a page's `parameters` cell, check a profile.

Papermill only warns about unknown parameters, so every profile file is checked here before a page
runs: each key must exist in the page's parameters cell with a compatible type, and each value that is
a run setting (or a list of them, e.g. ``seeds``) must pass `RunConfig` validation.

A profile is a folder of ``params/``. One of the user's names a `base` in its ``_shared.yaml`` (else
``default``), and one precedence holds, lowest first: the page's defaults, then for each profile of the
chain, the farthest base first, its ``_shared.yaml`` then its ``<page>.yaml``. The user's profile thus wins
over its base at every level: its ``_shared.yaml`` ``seeds`` beat the ``seeds`` of the base's page file.
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
    "cause_datasets": "dataset",
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


def check_profile_name(profile: str, params_dir: Path = PARAMS_DIR, what: str = "profile") -> str:
    """`profile` when it is a plain folder name of `params_dir` (no path, no dot folder), else one
    ParamError line listing the profiles; every command that takes a profile goes through here."""
    if not isinstance(profile, str) or profile not in profiles(params_dir):
        raise ParamError(
            f"unknown {what} {profile!r}: a profile is a folder name under {params_dir}; "
            f"profiles: {', '.join(profiles(params_dir))}"
        )
    return profile


def _own_shared(profile: str, params_dir: Path) -> tuple[Path, dict[str, Any]]:
    path = params_dir / profile / SHARED_FILE
    return path, load_yaml_mapping(path, ParamError) if path.is_file() else {}


def base_of(profile: str, params_dir: Path = PARAMS_DIR) -> str | None:
    """The profile that fills the pages and shared settings `profile` omits: its `_shared.yaml`'s `base`,
    else `default` for a profile of the user's; the built-in profiles stand alone."""
    path, own = _own_shared(profile, params_dir)
    base = own.get(BASE_KEY, None if profile in PROFILES else "default")
    if base is None:
        return None
    if base == profile:
        raise ParamError(
            f"{_source(path)}: base {base!r} is not another profile; profiles: {', '.join(profiles(params_dir))}"
        )
    return check_profile_name(base, params_dir, what=f"base in {_source(path)}:")


def profile_chain(profile: str, params_dir: Path = PARAMS_DIR) -> list[str]:
    """`profile` and its bases, the farthest base first (`[default, mine]`); a cycle is one line."""
    chain = [check_profile_name(profile, params_dir)]
    while (base := base_of(chain[0], params_dir)) is not None:
        if base in chain:
            raise ParamError(f"profiles {' → '.join([*reversed(chain), base])} form a cycle of bases")
        chain.insert(0, base)
    return chain


def load_shared(profile: str, params_dir: Path = PARAMS_DIR) -> tuple[Path, dict[str, Any]]:
    """The profile's shared settings (``params/<profile>/_shared.yaml`` over its bases'; {} when none)."""
    merged: dict[str, Any] = {}
    for name in profile_chain(profile, params_dir):
        path, own = _own_shared(name, params_dir)
        merged.update({k: v for k, v in own.items() if k != BASE_KEY})
    return path, merged


def parameter_layers(page: str, profile: str, params_dir: Path = PARAMS_DIR) -> list[tuple[Path, dict]]:
    """The files that set `page`'s parameters under `profile`, lowest precedence first: for each profile of
    its chain, the farthest base first, its `_shared.yaml` then its page file (``<page>.yaml``). So the
    user's profile wins over its base at every level. Shared entries hold settings of every page: the
    caller keeps those the page has."""
    layers = []
    for name in profile_chain(profile, params_dir):
        path, own = _own_shared(name, params_dir)
        layers.append((path, {k: v for k, v in own.items() if k != BASE_KEY}))
        page_file = params_dir / name / f"{page}.yaml"
        if page_file.is_file():
            layers.append((page_file, load_yaml_mapping(page_file, ParamError)))
    return layers


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


def resolve_profile(
    page: str, profile: str, book_dir: Path = BOOK_DIR, params_dir: Path = PARAMS_DIR
) -> dict[str, tuple[Any, Path]]:
    """Validated parameters of `page` under `profile`, each with the file that set it: {key: (value, path)}
    (only keys a file sets; `parameter_layers` gives the precedence). Raises ParamError with one line
    naming file and key."""
    defaults = page_parameters(book_dir / f"{page}.md")
    resolved: dict[str, tuple[Any, Path]] = {}
    for path, values in parameter_layers(page, profile, params_dir):
        if path.name == SHARED_FILE:
            values = {k: v for k, v in values.items() if k in defaults}
        _check_values(page, values, defaults, _source(path))
        resolved.update({k: (v, path) for k, v in values.items()})
    merged = {**defaults, **{k: v for k, (v, _) in resolved.items()}}
    for key, container in MEMBER_OF.items():
        if key in merged and container in merged and merged[key] not in merged[container]:
            where = _source(resolved[key][1] if key in resolved else resolved[container][1])
            raise ParamError(
                f"{where}: key '{key}': {merged[key]!r} is not in {container} {merged[container]!r}"
            )
    return resolved


def check_profile(
    page: str, profile: str, book_dir: Path = BOOK_DIR, params_dir: Path = PARAMS_DIR
) -> dict[str, Any]:
    """Validated parameters of `page` under `profile` (the keys some file sets; `resolve_profile`)."""
    return {k: v for k, (v, _) in resolve_profile(page, profile, book_dir, params_dir).items()}


def differences_from_base(
    page: str, profile: str, book_dir: Path = BOOK_DIR, params_dir: Path = PARAMS_DIR
) -> list[str]:
    """One line per parameter of `page` whose value under `profile` differs from its value under the
    profile's base, naming the file it came from; [] for a profile without a base."""
    base = base_of(check_profile_name(profile, params_dir), params_dir)
    if base is None:
        return []
    defaults = page_parameters(book_dir / f"{page}.md")
    own = resolve_profile(page, profile, book_dir, params_dir)
    theirs = {k: v for k, (v, _) in resolve_profile(page, base, book_dir, params_dir).items()}
    lines = []
    for key, (value, path) in own.items():
        was = theirs.get(key, defaults[key])
        if value != was:
            lines.append(f"{page}: {key} = {value!r} (base {base}: {was!r}) from {_source(path)}")
    return lines


def check_shared(
    profile: str, pages: list[str], book_dir: Path = BOOK_DIR, params_dir: Path = PARAMS_DIR
) -> None:
    """Every key of the `_shared.yaml` of the profile and its bases is a parameter of at least one of
    `pages` (a typo there would otherwise apply to no page, silently)."""
    known = set().union(*(page_parameters(book_dir / f"{p}.md") for p in pages)) if pages else set()
    for name in profile_chain(profile, params_dir):
        path, own = _own_shared(name, params_dir)
        unknown = sorted(set(own) - known - {BASE_KEY})
        if unknown:
            raise ParamError(
                f"{_source(path)}: key(s) {', '.join(unknown)} are parameters of no page; "
                f"known: {', '.join(sorted(known))}"
            )
