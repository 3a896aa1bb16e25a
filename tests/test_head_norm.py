"""Norm apart from direction: runs that start FT from a head rescaled to another head's norm."""

import numpy as np
import pytest

from lpft_nb.config import ConfigError, RunConfig
from lpft_nb.runs.run import get_run


def _direction(weight: np.ndarray) -> np.ndarray:
    return weight / np.linalg.norm(weight)


def test_lp_head_rescaled_to_the_random_norm_keeps_its_direction(tiny_run):
    own = get_run(RunConfig.from_dict({**tiny_run, "method": "lp_ft"}), progress=False)
    cfg = RunConfig.from_dict({**tiny_run, "method": "lp_ft", "head_norm_to": "random"})
    rescaled = get_run(cfg, progress=False)
    start = rescaled.arrays["head_weight_init"]
    assert np.linalg.norm(start) == pytest.approx(rescaled.metrics["head_norm_random"], rel=1e-5)
    np.testing.assert_allclose(_direction(start), _direction(own.arrays["head_weight_init"]), atol=1e-6)
    assert np.linalg.norm(own.arrays["head_weight_init"]) > 2 * np.linalg.norm(start)


def test_random_head_rescaled_to_the_lp_norm_keeps_its_direction(tiny_run):
    own = get_run(RunConfig.from_dict({**tiny_run, "method": "ft"}), progress=False)
    rescaled = get_run(
        RunConfig.from_dict({**tiny_run, "method": "ft", "head_norm_to": "lp"}), progress=False
    )
    start = rescaled.arrays["head_weight_init"]
    assert np.linalg.norm(start) == pytest.approx(rescaled.metrics["lp"]["weight_norm"], rel=1e-5)
    np.testing.assert_allclose(_direction(start), _direction(own.arrays["head_weight_init"]), atol=1e-6)


def test_features_after_the_last_step_are_kept_beside_the_restored_ones(tiny_run):
    result = get_run(RunConfig.from_dict({**tiny_run, "method": "ft", "epochs": 3}), progress=False)
    a, m = result.arrays, result.metrics
    assert m["last_epoch"] == 3 and 1 <= m["best_epoch"] <= 3
    same = np.array_equal(a["features_last_test"], a["features_after_test"])
    assert same == (m["best_epoch"] == 3)


@pytest.mark.parametrize(("method", "target"), [("ft", "random"), ("lp_ft", "lp"), ("lp", "random")])
def test_a_rescale_that_does_not_fit_the_method_is_refused(method, target):
    with pytest.raises(ConfigError, match="head_norm_to"):
        RunConfig.from_dict({"method": method, "head_norm_to": target})
