"""lpft_nb: the tested helpers behind the executable LP-FT book (Tomihari & Sato, NeurIPS 2024).

Pages import the package as one name and use the short list of names below::

    import lpft_nb as lp
    plan = lp.page_plan("dynamics", globals())  # a page's runs, from its parameters
    study = plan.study()
    lp.tables.head_norm_table(study)

Layers, lowest first (a module imports only from its own layer or lower ones; a test checks it):
``config``, ``paper``, ``atomic``, ``resources``, ``device`` → ``data`` → ``model`` → ``runs`` → ``analysis`` →
``report`` → ``book`` → ``cli``, ``bench``, ``sweep``.
"""

import warnings

# Pages run in a Jupyter kernel without ipywidgets: tqdm.auto (imported by transformers) would warn on every
# page that it falls back to text bars, which is no problem of the page's.
warnings.filterwarnings("ignore", message="IProgress not found")

from . import estimate, paper, sweep
from .analysis import calibration, features, kernels, linearization, lora, lp_causes, span
from .analysis.lp_causes import lp_regularization_path
from .book.build import executed_dir
from .book.plans import page_plan
from .config import ConfigError, RunConfig, lp_label
from .data.tasks import DataError, class_names, load_task
from .model.classifier import ModelNotFoundError
from .model.train import epoch_summary
from .report import claims, plots, tables
from .report.claim_rules import (
    boss_claims,
    calibration_claims,
    controlled_feature_change_claims,
    corollary_claim,
    dynamics_claims,
    lora_claims,
    lp_cause_claims,
    norms_claims,
    ntk_claims,
    scaling_claims,
)
from .runs.grid import Study
from .runs.run import RunResult, get_run

__all__ = [
    # modules
    "calibration",
    "claims",
    "estimate",
    "features",
    "kernels",
    "linearization",
    "lora",
    "lp_causes",
    "paper",
    "plots",
    "span",
    "sweep",
    "tables",
    "executed_dir",
    "page_plan",
    # runs and data
    "ConfigError",
    "DataError",
    "ModelNotFoundError",
    "RunConfig",
    "RunResult",
    "class_names",
    "get_run",
    "load_task",
    "lp_label",
    # studies
    "Study",
    "epoch_summary",
    "lp_regularization_path",
    # claim checks
    "boss_claims",
    "calibration_claims",
    "controlled_feature_change_claims",
    "corollary_claim",
    "dynamics_claims",
    "lora_claims",
    "lp_cause_claims",
    "norms_claims",
    "ntk_claims",
    "scaling_claims",
]
