"""lpft_nb: the tested helpers behind the executable LP-FT book (Tomihari & Sato, NeurIPS 2024).

Pages import the package as one name::

    import lpft_nb as lp
    study = lp.Study(datasets=["cb"], methods=["ft", "lp_ft"], seeds=[1, 2]).run()
"""

from . import book, calibration, claims, features, headnorm, kernel_runs, linear_model, paper, plots, probe
from .checks import (
    boss_claims,
    calibration_claims,
    corollary_claim,
    dynamics_claims,
    lora_claims,
    norms_claims,
    ntk_claims,
    scaling_claims,
)
from .config import ConfigError, RunConfig
from .data import DataError, class_names, load_task
from .model import ModelNotFoundError
from .runs import RunResult, get_run
from .study import Study, epoch_summary, feature_stats, lp_label, lp_regularization_path

__all__ = [
    # modules
    "book", "calibration", "claims", "features", "headnorm", "kernel_runs", "linear_model", "paper", "plots", "probe",
    # runs and data
    "ConfigError", "DataError", "ModelNotFoundError", "RunConfig", "RunResult", "class_names", "get_run", "load_task",
    # studies
    "Study", "epoch_summary", "feature_stats", "lp_label", "lp_regularization_path",
    # claim checks
    "boss_claims", "calibration_claims", "corollary_claim", "dynamics_claims", "lora_claims", "norms_claims",
    "ntk_claims", "scaling_claims",
]
