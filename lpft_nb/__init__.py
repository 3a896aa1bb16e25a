"""lpft_nb: the tested helpers behind the executable LP-FT book (Tomihari & Sato, NeurIPS 2024).

Pages import the package as one name and use the short list of names below::

    import lpft_nb as lp
    plan = lp.page_plan("dynamics", globals())  # a page's runs, from its parameters
    study = plan.study()
    lp.tables.head_norm_table(study)

Layers, lowest first (a module imports only from its own layer or lower ones; a test checks it):
``config``, ``paper``, ``atomic``, ``resources``, ``device`` → ``data`` → ``model`` → ``runs`` → ``analysis`` →
``report`` → ``book`` → ``cli``, ``bench``, ``sweep``.

Every name below is imported on first use, so ``import lpft_nb`` costs milliseconds and a page that reads
its runs from the cache never imports torch, transformers or scikit-learn.
"""

import importlib
import warnings

# Pages run in a Jupyter kernel without ipywidgets: tqdm.auto (imported by transformers) would warn on every
# page that it falls back to text bars, which is no problem of the page's.
warnings.filterwarnings("ignore", message="IProgress not found")

# public name → the module (relative to the package) that holds it; a module's own name maps to itself
_MODULES = {
    "calibration": "analysis.calibration",
    "claims": "report.claims",
    "estimate": "estimate",
    "features": "analysis.features",
    "kernels": "analysis.kernels",
    "linearization": "analysis.linearization",
    "lora": "analysis.lora",
    "lp_causes": "analysis.lp_causes",
    "paper": "paper",
    "plots": "report.plots",
    "span": "analysis.span",
    "sweep": "sweep",
    "tables": "report.tables",
}
_NAMES = {
    # pages
    "executed_dir": "book.build",
    "page_plan": "book.plans",
    # runs and data
    "ConfigError": "config",
    "DataError": "data.tasks",
    "ModelNotFoundError": "model.hub",
    "RunConfig": "config",
    "RunResult": "runs.run",
    "class_names": "data.tasks",
    "get_run": "runs.run",
    "load_task": "data.tasks",
    "lp_label": "config",
    # studies
    "Study": "runs.grid",
    "epoch_summary": "report.tables",
    "lp_regularization_path": "analysis.lp_causes",
    # claim checks
    **dict.fromkeys(
        (
            "boss_claims",
            "calibration_claims",
            "controlled_feature_change_claims",
            "corollary_claim",
            "dynamics_claims",
            "lora_claims",
            "lp_cause_claims",
            "norm_direction_claims",
            "norms_claims",
            "ntk_claims",
            "scaling_claims",
        ),
        "report.claim_rules",
    ),
}
__all__ = sorted(_MODULES) + sorted(_NAMES)


def __getattr__(name: str):
    """Import a public name on first use (PEP 562) and keep it in the package's namespace."""
    if name in _MODULES:
        value = importlib.import_module(f"{__name__}.{_MODULES[name]}")
    elif name in _NAMES:
        value = getattr(importlib.import_module(f"{__name__}.{_NAMES[name]}"), name)
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
