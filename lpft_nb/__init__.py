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

__all__ = ["book", "calibration", "linear_model", "claims", "features", "headnorm", "paper", "plots", "probe", "ConfigError", "RunConfig", "DataError",
           "load_task", "class_names", "dynamics_claims", "boss_claims", "lora_claims", "ntk_claims", "kernel_runs", "calibration_claims", "corollary_claim", "norms_claims", "scaling_claims", "lp_regularization_path", "feature_stats", "ModelNotFoundError", "RunResult", "get_run", "Study", "epoch_summary", "lp_label"]
