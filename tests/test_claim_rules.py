"""The claim rules and the tables, on a fake grid of runs that hold per-example arrays (no training): one case
per rule, the kinds fixed before the numbers, and the tables' columns and "–" cells."""

from dataclasses import dataclass, field

import numpy as np
import pytest

from lpft_nb.report import claim_rules, evidence, tables
from lpft_nb.runs.grid import Study

N_TEST, DIM = 60, 8


@dataclass
class FakeConfig:
    lr: float = 5e-5
    epochs: int = 2
    batch_size: int = 16

    def resolved_lr(self) -> float:
        return self.lr

    def resolved_batch_size(self) -> int:
        return self.batch_size


@dataclass
class FakeRun:
    metrics: dict
    arrays: dict = field(default_factory=dict)
    config: FakeConfig = field(default_factory=FakeConfig)


def make_arrays(seed: int, accuracy: float = 0.7, diff: float = 1.0, spread: float = 1.0) -> dict:
    """Per-example arrays of one fake run: 3-class logits right on a share `accuracy` of the test examples,
    features moved by about `diff` from the pre-trained ones (`spread`: how far they separate the classes)."""
    rng = np.random.default_rng(seed)
    labels = np.arange(N_TEST) % 3
    right = rng.random(N_TEST) < accuracy
    predicted = np.where(right, labels, (labels + 1) % 3)
    logits = np.eye(3)[predicted] * 2.0 + 0.1 * rng.normal(size=(N_TEST, 3))
    before = np.random.default_rng(0).normal(size=(N_TEST, DIM))
    after = before + diff * rng.normal(size=(N_TEST, DIM)) / np.sqrt(DIM)
    after[:, :3] += spread * np.eye(3)[labels]
    return {
        "logits_test": logits,
        "labels_test": labels,
        "features_before_test": before,
        "features_after_test": after,
        "features_last_test": after,
        "head_weight_init": np.zeros((3, 384)),
        "labels_train": np.zeros(120, int),
    }


def grid(cells: dict, datasets=("cb",), seeds=(1, 2, 3), lp_Cs=("cv",), head_scales=(1.0,)) -> Study:
    """A Study whose runs are `FakeRun(*cells[method](seed, lp_C, scale))`: (metrics, arrays) per cell."""
    study = Study(list(datasets), list(cells), list(seeds), list(lp_Cs), head_scales=list(head_scales))
    for d in datasets:
        for m, make in cells.items():
            for c in lp_Cs:
                for s in head_scales:
                    for seed in seeds:
                        metrics, arrays = make(seed, c, s)
                        study.results[Study._key(d, m, seed, c, s)] = FakeRun(metrics, arrays)
    return study


def head(init, final, **extra):
    return {"head_norm_init": init, "head_norm_final": final, "best_epoch": 1, **extra}


def by_statement(claims, text):
    found = [c for c in claims if text in c.statement]
    assert len(found) == 1, [c.statement for c in claims]
    return found[0]


@pytest.mark.parametrize(("lp_norm", "expected"), [(30.0, "holds"), (2.0, "does not hold")])
def test_m1_lp_head_against_ten_times_the_random_init(lp_norm, expected):
    study = grid(
        {
            "lp": lambda seed, c, s: (
                head(1.0, 1.0, lp={"weight_norm": lp_norm + 0.3 * seed}),
                make_arrays(seed),
            ),
            "ft": lambda seed, c, s: (head(1.0 + 0.01 * seed**2, 1.0), make_arrays(seed)),
        }
    )
    claim = by_statement(claim_rules.dynamics_claims(study), "at random init")
    assert claim.status == expected and claim.kind == "claim"
    assert claim.tolerance == "factor 10" and claim.tolerance_source == "book" and claim.sensitivity


def test_m1_at_a_fixed_c_that_fails_is_counted_as_a_failure():
    # LP at a fixed C on separable data, but the head still short: the check fails and stays a claim
    study = grid(
        {
            "lp": lambda seed, c, s: (
                head(1.0, 1.0, lp={"weight_norm": 2.0 + 0.1 * seed, "train_accuracy": 1.0, "C": 100.0}),
                make_arrays(seed),
            ),
            "ft": lambda seed, c, s: (head(1.0 + 0.01 * seed**2, 1.0), make_arrays(seed)),
        },
        lp_Cs=(100.0,),
    )
    claim = by_statement(claim_rules.dynamics_claims(study), "at random init")
    assert claim.status == "does not hold" and claim.kind == "claim"
    assert "set by the book" in claim.statement


def test_the_adam_bound_is_one_at_the_first_step_and_tends_to_7_27():
    assert claim_rules.adam_step_bound(1) == pytest.approx(1.0)
    assert claim_rules.adam_step_bound(100_000) == pytest.approx(7.27, abs=0.01)
    assert claim_rules.adam_step_bound(300) > 3.16  # the per-step "3.16" is no bound with bias correction


@pytest.mark.parametrize(("lr", "kind"), [(5e-5, "vacuous"), (5e-2, "claim")])
def test_m2_is_vacuous_from_the_setup_alone_when_adam_cannot_leave_the_band(lr, kind):
    def ft(seed, c, s):
        run_arrays = make_arrays(seed)
        return head(1.0, 1.0 + 0.01 * seed), run_arrays

    study = grid({"ft": ft})
    for run in study.results.values():
        run.config = FakeConfig(lr=lr)
    claim = by_statement(claim_rules.dynamics_claims(study), "after FT within")
    assert claim.kind == kind
    if kind == "vacuous":
        assert claim.why.startswith("vacuous at this scale")


def test_m2_lora_grows_the_head_is_a_paired_test():
    study = grid(
        {"lora": lambda seed, c, s: (head(1.0 * seed, 1.0 * seed + 0.02 + 0.001 * seed), make_arrays(seed))}
    )
    claim = by_statement(claim_rules.dynamics_claims(study), "LoRA grows")
    assert claim.status == "holds" and "paired" in claim.statement


def test_a1_is_non_inferiority_on_per_example_correctness():
    study = grid(
        {
            "ft": lambda seed, c, s: (head(1.0, 1.0), make_arrays(seed, accuracy=0.6)),
            "lp_ft": lambda seed, c, s: (head(1.0, 1.0), make_arrays(seed + 10, accuracy=0.6)),
        }
    )
    claim = by_statement(claim_rules.accuracy_claims(study, "dynamics"), "test accuracy")
    assert claim.tolerance == "margin 1 points" and claim.rule.startswith("a t-test")
    assert claim.status == "inconclusive" and claim.decidable is False  # 60 examples cannot see 3.2 points
    assert claim.paper_effect == pytest.approx(3.21)


def test_m3_m4_m5_feature_rules(monkeypatch):
    monkeypatch.setattr(
        claim_rules,
        "feature_stats",
        lambda run, split="test", before=False: {
            "FDR": 100.0,
            "FDR_null": 1.0,
            "FDR_null_lo": 0.5,
            "FDR_null_hi": 2.0,
            "FDR_k": 8,
        },
    )
    study = grid(
        {
            "ft": lambda seed, c, s: (head(1.0, 1.0), make_arrays(seed, diff=3.0, spread=3.0)),
            "lp_ft": lambda seed, c, s: (head(1.0, 1.0), make_arrays(seed + 10, diff=0.5, spread=0.5)),
        }
    )
    out = claim_rules.norms_claims(study)
    statuses = {c.id: c.status for c in out}
    assert statuses["M3"] == "holds" and statuses["M5"] == "holds"
    assert "common to both" in by_statement(out, "FDR").statement
    assert by_statement(out, "Diff(F)").statement.endswith("after the last step: FT > LP-FT")


def test_m5_is_inconclusive_without_a_test_when_both_fdrs_sit_in_their_null(monkeypatch):
    monkeypatch.setattr(
        claim_rules,
        "feature_stats",
        lambda run, split="test", before=False: {
            "FDR": 1.0,
            "FDR_null": 0.9,
            "FDR_null_lo": 0.5,
            "FDR_null_hi": 1.5,
            "FDR_k": 8,
        },
    )
    study = grid({m: (lambda seed, c, s: (head(1.0, 1.0), make_arrays(seed))) for m in ("ft", "lp_ft")})
    claim = by_statement(claim_rules.norms_claims(study), "FDR")
    assert claim.status == "inconclusive" and claim.p is None and "null band" in claim.why


def test_m6_tests_the_per_seed_slope_over_every_scale():
    def make(seed, c, s):  # Diff falls as the head grows, by a factor per decade
        return head(s, 1.0), make_arrays(seed, diff=2.0 / (1 + np.log10(s) + 1.5))

    study = grid({"ft": make, "lp_ft": make}, head_scales=(0.1, 1.0, 10.0))
    out = claim_rules.scaling_claims(study, "cb")
    slope = by_statement(out, "CB FT: Diff(F) falls")
    assert slope.status == "holds" and "×0.1, ×1, ×10" in slope.statement
    two = grid({"ft": make, "lp_ft": make}, head_scales=(0.1, 10.0))
    assert len(claim_rules.scaling_claims(two, "cb")) == 3  # two scales are enough for a slope


def test_c1_c2_use_bootstrap_replicates_and_c2_comparable_is_non_inferiority(monkeypatch):
    monkeypatch.setattr(evidence, "run_calibration", lambda run, split="test": {"T": 2.0})

    def method(offset):
        return lambda seed, c, s: (head(1.0, 1.0), make_arrays(seed + offset))

    study = grid({m: method(10 * i) for i, m in enumerate(("ft", "lp_ft", "lora", "lp_lora"))})
    out = claim_rules.calibration_claims(study)
    comparable = by_statement(out, "comparable")
    assert comparable.tolerance == "margin 5 points" and comparable.tolerance_source == "book"
    assert comparable.status != "holds" or comparable.p < 0.05  # never "holds" on non-significance
    most = by_statement(out, "TS improves ECE")
    assert "intersection–union" in most.rule


def test_ntk_ranks_are_exact_and_k2_is_an_equivalence_with_a_margin_from_the_papers_values():
    class Stats:
        def __init__(self, rank, fn, ratio, setting):
            self.rank, self.fn, self.ratio = rank, fn, ratio
            self.spec = type("Spec", (), {"setting": setting})()
            self.parts = type("Parts", (), {"n_train": 8, "p_scalar": np.eye(16)})()
            self.C = 3

        def statistics(self, block):
            return {"rank_fp32": self.rank, "fn": self.fn}

        def ft_ratio(self):
            return self.ratio

    by_seed = [
        {
            "FT": Stats(10, 1.0 + 0.01 * k, 0.2 + 0.01 * k, "ft"),
            "LP-FT": Stats(12, 50.0 + k, 0.999 + 0.0002 * k, "lp_ft"),
        }
        for k in range(3)
    ]
    out = claim_rules.ntk_claims(by_seed, "cb")
    k2 = by_statement(out, "≈ 1")
    assert k2.status == "holds" and k2.tolerance_source == "book" and "0.9918" in k2.tolerance
    rank = by_statement(out, "low rank")  # rank 10 in every seed against a quarter of 24: exact
    assert rank.rule.startswith("exact comparison") and rank.p is None and rank.status == "does not hold"
    assert rank.sensitivity == "at half: does not hold; at double: holds"


def test_head_norm_table_columns_and_paper_cells():
    study = grid(
        {
            "lp": lambda seed, c, s: (head(1.0 * seed, 30.0), make_arrays(seed)),
            "ft": lambda seed, c, s: (head(1.0, 1.1), make_arrays(seed)),
        }
    )
    table = tables.head_norm_table(study)
    assert list(table.columns) == ["cb ours", "cb paper"]
    assert list(table.index) == ["Pre-trained (random init)", "LP", "FT"]
    assert table.loc["LP", "cb paper"] == 33.5 and table.loc["FT", "cb ours"] == "1.1 ± 0"


def test_feature_table_shows_the_null_band_and_the_restored_epoch(monkeypatch):
    monkeypatch.setattr(
        tables,
        "feature_stats",
        lambda run, split="test", before=False: {
            "CS": 0.5,
            "Diff": 0.0 if before else 2.0,
            "Diff_last": 0.0 if before else 2.5,
            "Diff_norm": 0.1,
            "FDR": 10.0,
            "FDR_null": 0.9,
            "FDR_null_lo": 0.5,
            "FDR_null_hi": 1.4,
            "FDR_k": 13,
        },
    )
    study = grid(
        {
            "lp": lambda seed, c, s: (head(1.0, 30.0), make_arrays(seed)),
            "ft": lambda seed, c, s: (
                head(1.0, 1.1, best_epoch=seed % 2 + 1, last_epoch=2),
                make_arrays(seed),
            ),
        },
        datasets=("rte",),
    )
    table = tables.feature_table(study, "rte")
    assert table.loc["LP", "Diff(F) ours"] == "–"
    assert table.loc["FT", "Diff(F) ours"] == "2.5 ± 0"  # after the last step
    assert {"FDR(F) 13-d ours", "FDR(F) paper, full-d", "Norm(C) paper"} <= set(table.columns)
    detail = tables.feature_detail_table(study, "rte")
    assert detail.loc["FT", "Diff(F), restored epoch"] == "2 ± 0"
    assert detail.loc["FT", "FDR null: mean [95 % band]"] == "0.9 [0.5, 1.4]"
    assert detail.loc["FT", "restored epoch"] == "2, 1, 2 of 2"


def test_tables_show_no_nan_and_whole_numbers_as_integers():
    import pandas as pd

    from lpft_nb.report.format import tidy

    table = tidy(pd.DataFrame({"n": [52.0, float("nan")], "paper": [None, 33.5], "text": ["a", "b"]}))
    assert table.to_dict("list") == {"n": [52, "–"], "paper": ["–", 33.5], "text": ["a", "b"]}


def test_scoreboard_counts_what_the_claims_summary_counts():
    import pandas as pd

    from lpft_nb.report.plots import scoreboard_figure

    records = pd.DataFrame(
        {
            "id": ["M1", "M1", "M2", "K1", "Cor4.3"],
            "status": ["holds", "inconclusive", "holds", "not run", "holds"],
            "kind": ["claim"] * 4 + ["identity"],  # an identity is no claim: not on the scoreboard
        }
    )
    ax = scoreboard_figure(records).axes[0]
    widths = {(bar.get_y(), bar.get_facecolor()): bar.get_width() for bar in ax.patches}
    assert sum(widths.values()) == 4 and len([w for w in widths.values() if w]) == 4
    assert [t.get_text() for t in ax.get_yticklabels()] == ["M1", "M2", "K1"]


def test_checks_that_hold_by_construction_are_identities():
    from lpft_nb.analysis.span import SpanExperiment
    from lpft_nb.report.claim_rules import corollary_claim

    exact = SpanExperiment("gd", 10, np.zeros(3), np.ones(3), 0.1, 1.0)
    assert corollary_claim(exact).kind == "identity" and corollary_claim(exact).status == "holds"


def test_a_collapsed_seed_is_flagged_in_the_table_and_the_check():
    def constant(seed, c, s):
        arrays = make_arrays(seed)
        if seed == 2:  # predicts class 0 for every example: a collapsed run
            arrays["logits_test"] = np.tile([3.0, 0.0, 0.0], (N_TEST, 1))
        return head(
            1.0,
            1.0,
            test={"accuracy": float(np.mean(arrays["logits_test"].argmax(1) == arrays["labels_test"]))},
        ), arrays

    def fine(seed, c, s):
        arrays = make_arrays(seed + 10)
        return head(
            1.0,
            1.0,
            test={"accuracy": float(np.mean(arrays["logits_test"].argmax(1) == arrays["labels_test"]))},
        ), arrays

    study = grid({"ft": constant, "lp_ft": fine})
    assert evidence.collapsed(study.get("cb", "ft")[1]) and not evidence.collapsed(study.get("cb", "ft")[0])
    cell = tables.accuracy_table(study).loc["FT", "cb ours"]
    assert "1 of 3 collapsed" in cell and "median" in cell
    claim = by_statement(claim_rules.accuracy_claims(study, "dynamics"), "test accuracy")
    assert "collapsed runs" in claim.why and "ft seed 2" in claim.why


def test_calibration_checks_subtract_what_a_calibrated_model_would_show():
    # two perfectly calibrated methods, one with sharp and one with spread-out confidences: the plug-in ECE
    # differs by several points, the debiased one does not
    rng = np.random.default_rng(0)
    raw, debiased = [], []
    for rep in range(40):
        pair = []
        for centre, sd in ((0.95, 0.05), (0.7, 0.15)):
            conf = np.clip(rng.normal(centre, sd, 56), 0.34, 0.999)
            probs = np.stack([conf, (1 - conf) / 2, (1 - conf) / 2], axis=1)
            labels = (rng.random((56, 1)) > probs.cumsum(axis=1)).sum(axis=1).clip(max=2)
            error = evidence.calibration_error(probs, labels, "ece")
            pair.append((error, error - evidence.calibrated_expectation(probs, "ece", seed=rep)))
        raw.append(pair[0][0] - pair[1][0])
        debiased.append(pair[0][1] - pair[1][1])
    assert abs(np.mean(raw)) > 0.05 and abs(np.mean(debiased)) < 0.02
    probs = np.array([[0.9, 0.1], [0.6, 0.4], [0.8, 0.2], [0.55, 0.45]])
    assert evidence.calibration_error(probs, np.array([0, 1, 0, 0]), "ece") == pytest.approx(0.1125)


def test_the_bootstrapped_cosine_is_the_books_cs_and_norm_direction_checks_pair_by_seed():
    from lpft_nb.analysis.features import mean_pairwise_cosine

    features = np.random.default_rng(5).normal(size=(30, 8)) + 1.0
    gram = evidence._unit_gram(features)
    assert evidence._mean_off_diagonal(gram, np.arange(30)) == pytest.approx(mean_pairwise_cosine(features))

    def run(diff):
        return lambda seed, c, s: (head(1.0, 1.0), make_arrays(seed, diff=diff + 0.1 * seed))

    big, small = grid({"ft": run(3.0), "lp_ft": run(2.0)}), grid({"ft": run(1.0), "lp_ft": run(1.0)})
    big.settings = {"lr": 5e-5}
    out = claim_rules.norm_direction_claims(big, small, grid({"lp_ft": run(3.0)}))
    assert [c.statement.split(": ", 1)[1] for c in out] == [
        "random head's direction: Diff(F) at its own norm > at the LP head's norm",
        "LP head's direction: Diff(F) at the random head's norm > at its own norm",
    ]
    assert out[0].status == "holds" and out[0].seeds == "3 vs 3"
    shifted = grid({"ft": run(1.0)}, seeds=(4, 5, 6))  # other seeds cannot be paired
    with pytest.raises(ValueError, match="same seeds"):
        claim_rules.norm_direction_claims(big, shifted, grid({"lp_ft": run(3.0)}))
