"""The claim rules and the tables, on a fake grid built from metric dicts (no training): one case per rule,
per override (C2's "comparable", M6's Spearman requirement), and the tables' columns and "–" cells."""

from dataclasses import dataclass, field

import numpy as np
import pytest

from lpft_nb.report import claim_rules, tables
from lpft_nb.runs.grid import Study


@dataclass
class FakeConfig:
    lr: float = 5e-5

    def resolved_lr(self) -> float:
        return self.lr


@dataclass
class FakeRun:
    metrics: dict
    arrays: dict = field(default_factory=lambda: {"head_weight_init": np.zeros((3, 384))})
    history: dict = field(default_factory=lambda: {"step": list(range(1, 17))})  # 16 Adam steps
    config: FakeConfig = field(default_factory=FakeConfig)


def grid(cells: dict, datasets=("cb",), seeds=(1, 2, 3), lp_Cs=("cv",), head_scales=(1.0,)) -> Study:
    """A Study whose runs are `FakeRun(metrics(method, seed, lp_C, scale))`, one per grid cell.

    `cells[method]` is a function (seed, lp_C, scale) → metrics dict."""
    study = Study(
        datasets=list(datasets),
        methods=list(cells),
        seeds=list(seeds),
        lp_Cs=list(lp_Cs),
        head_scales=list(head_scales),
    )
    for d in datasets:
        for m, make in cells.items():
            for c in lp_Cs:
                for s in head_scales:
                    for seed in seeds:
                        study.results[Study._key(d, m, seed, c, s)] = FakeRun(make(seed, c, s))
    return study


def head(init, final, **extra):
    return {"head_norm_init": init, "head_norm_final": final, **extra}


@pytest.fixture(autouse=True)
def stats_from_metrics(monkeypatch):
    """feature statistics and calibration read from the fake metrics (their own tests are elsewhere)."""
    monkeypatch.setattr(
        claim_rules, "feature_stats", lambda run, split="test", before=False: run.metrics["fs"][split]
    )
    monkeypatch.setattr(
        claim_rules,
        "calibration_values",
        lambda study, d, m, key, lp_C="cv": study.values(d, m, lambda r: r.metrics["cal"][key], lp_C),
    )
    monkeypatch.setattr(claim_rules, "run_calibration_ci", lambda run, key: run.metrics["cal"][f"{key}_ci"])


def by_statement(claims, text):
    found = [c for c in claims if text in c.statement]
    assert len(found) == 1, [c.statement for c in claims]
    return found[0]


@pytest.mark.parametrize("lp_norm, expected", [(30.0, "holds"), (2.0, "does not hold")])
def test_m1_lp_head_against_ten_times_the_random_init(lp_norm, expected):
    jitter = {1: -0.01, 2: 0.0, 3: 0.01}
    study = grid(
        {
            "lp": lambda seed, c, s: head(1.0, 1.0, lp={"weight_norm": lp_norm + jitter[seed], "C": 0.1}),
            "ft": lambda seed, c, s: head(1.0 + jitter[seed], 1.05),
        }
    )
    claim = by_statement(claim_rules.dynamics_claims(study), "after LP ≥ 10 × ‖V‖ at random init")
    assert claim.status == expected and claim.id == "M1"
    if expected != "holds":
        assert "C = 0.1" in claim.why  # the regularisation that kept the head short is named


@pytest.mark.parametrize("final, expected", [(1.2, "holds"), (2.0, "does not hold")])
def test_m2_ft_head_within_a_factor_of_its_init(final, expected):
    study = grid(
        {
            "lp": lambda seed, c, s: head(1.0, 1.0, lp={"weight_norm": 20.0, "C": 1.0}),
            "ft": lambda seed, c, s: head(1.0, final),
        }
    )
    assert by_statement(claim_rules.dynamics_claims(study), "after FT within").status == expected


@pytest.mark.parametrize("steps, kind", [(16, "identity"), (5000, "claim")])
def test_m2_is_an_identity_when_adam_cannot_move_the_head_far_enough_to_fail(steps, kind):
    study = grid(
        {
            "lp": lambda seed, c, s: head(1.0, 1.0, lp={"weight_norm": 20.0, "C": 1.0}),
            "ft": lambda seed, c, s: head(1.0, 1.1),
        }
    )
    for run in study.results.values():
        run.history = {"step": list(range(1, steps + 1))}
    # 16 steps: at most 16 · 3.16 · 5e-5 · √1152 ≈ 0.086 of ‖V₀‖ = 1, inside ×1.5 either way
    assert claim_rules.adam_reach(next(iter(study.results.values()))) == pytest.approx(
        steps * 5e-5 * 0.1 / np.sqrt(0.001) * np.sqrt(1152)
    )
    claim = by_statement(claim_rules.dynamics_claims(study), "after FT within")
    assert claim.status == "holds" and claim.kind == kind
    assert ("cannot fail at this scale" in claim.why) == (kind == "identity")


def test_m6_needs_three_scales_and_a_monotone_fall():
    def diffs(values):
        scales = (0.1, 1.0, 10.0, 100.0)
        return lambda seed, c, s: head(1.0, 1.0, fs={"test": {"Diff": values[scales.index(s)] + 0.01 * seed}})

    scales = dict(head_scales=(0.1, 1.0, 10.0, 100.0), seeds=(1, 2))
    monotone = grid({"ft": diffs([5, 4, 3, 2]), "lp_ft": diffs([4, 3, 2, 1])}, **scales)
    out = claim_rules.scaling_claims(monotone, "cb")
    assert [c.status for c in out] == ["holds", "holds", "holds"]
    # ends lower than it starts, but Spearman ρ = 0 > −0.5: the override makes it fail
    zigzag = grid({"ft": diffs([5, 1, 6, 2]), "lp_ft": diffs([4, 3, 2, 1])}, **scales)
    ft = claim_rules.scaling_claims(zigzag, "cb")[0]
    assert ft.status == "does not hold" and "not monotone" in ft.why
    two = grid({"ft": diffs([5, 4, 3, 2])}, head_scales=(0.1, 1.0))
    assert [c.status for c in claim_rules.scaling_claims(two, "cb", methods=("ft",))] == ["not run"]


def test_m6_controlled_repeats_the_lp_ft_checks_at_fts_learning_rate():
    def diffs(values):
        scales = (0.1, 1.0, 10.0)
        return lambda seed, c, s: head(1.0, 1.0, fs={"test": {"Diff": values[scales.index(s)] + 0.01 * seed}})

    scales = dict(head_scales=(0.1, 1.0, 10.0))
    paper = grid({"ft": diffs([5, 4, 3]), "lp_ft": diffs([2, 1.5, 1])}, **scales)
    controlled = grid({"ft": diffs([5, 4, 3]), "lp_ft": diffs([6, 5, 4])}, **scales)
    controlled.settings = {"lr": 5e-5}
    out = claim_rules.scaling_claims(paper, "cb", controlled=controlled)
    tagged = [c for c in out if "controlled (at FT's lr 5e-05)" in c.statement]
    assert len(out) == 5 and len(tagged) == 2
    # under the paper's rates LP-FT ends below FT; at FT's rate it does not
    assert by_statement(out, "CB: at head × 10").status == "holds"
    assert by_statement(tagged, "at head × 10, Diff(F) of FT > of LP-FT").status == "does not hold"


def calibration_cell(mce, mce_ts, ece=0.1, ece_ts=0.05, ci_half=0.001):
    return lambda seed, c, s: head(
        1.0,
        1.0,
        cal={
            "mce": mce + 1e-3 * seed,
            "mce_ts": mce_ts + 1e-3 * seed,
            "ece": ece,
            "ece_ts": ece_ts,
            "mce_ci": (mce - ci_half, mce + ci_half),
            "ece_ci": (ece - ci_half, ece + ci_half),
        },
    )


def test_c1_and_the_c2_comparable_override():
    study = grid(
        {"ft": calibration_cell(mce=0.2, mce_ts=0.10), "lp_ft": calibration_cell(mce=0.5, mce_ts=0.10)}
    )
    out = claim_rules.calibration_claims(study)
    assert by_statement(out, "before TS, MCE(LP-FT) > MCE(FT)").status == "holds"
    after = by_statement(out, "after TS, MCE(LP-FT) comparable")
    assert after.status == "holds" and after.why.startswith("comparable: ")  # equal within noise
    worse = grid(
        {"ft": calibration_cell(mce=0.2, mce_ts=0.10), "lp_ft": calibration_cell(mce=0.5, mce_ts=0.40)}
    )
    assert by_statement(claim_rules.calibration_claims(worse), "after TS").status == "does not hold"


@pytest.mark.parametrize(
    "lp_ft_acc, expected", [(0.80, "holds"), (0.52, "inconclusive"), (0.30, "does not hold")]
)
def test_accuracy_rule_counts_the_binomial_error(lp_ft_acc, expected):
    def acc(value):
        return lambda seed, c, s: head(1.0, 1.0, test={"accuracy": value, "n": 56})

    study = grid({"ft": acc(0.5), "lp_ft": acc(lp_ft_acc)}, seeds=(1,))
    claim = claim_rules.accuracy_compare("A1", "p", "s", "–", study, "cb", "lp_ft", "ft")
    assert claim.status == expected
    # one seed: the standard error is the binomial one alone, √(p(1 − p)/n) per side in quadrature
    se = np.hypot(np.sqrt(0.5 * 0.5 / 56), np.sqrt(lp_ft_acc * (1 - lp_ft_acc) / 56))
    assert f"standard error {100 * se:.2g}" in claim.why


def test_m3_m4_m5_feature_rules():
    def feats(diff, cs, fdr):
        return lambda seed, c, s: head(
            1.0,
            1.0,
            fs={
                "test": {
                    "Diff": diff + 0.01 * seed,
                    "CS": cs + 1e-3 * seed,
                    "FDR": fdr * (1 + 0.01 * seed),
                    "FDR_k": 16,
                }
            },
        )

    study = grid({"ft": feats(diff=3.0, cs=0.5, fdr=100.0), "lp_ft": feats(diff=1.0, cs=0.9, fdr=10.0)})
    out = claim_rules.norms_claims(study)
    assert {c.id: c.status for c in out} == {"M3": "holds", "M4": "holds", "M5": "holds"}
    assert "16-d PCA subspace" in next(c.statement for c in out if c.id == "M5")


def test_head_norm_table_columns_and_paper_cells():
    study = grid({"lp": lambda seed, c, s: head(1.0 * seed, 30.0), "ft": lambda seed, c, s: head(1.0, 1.1)})
    table = tables.head_norm_table(study)
    assert list(table.columns) == ["cb ours", "cb paper"]
    assert list(table.index) == ["Pre-trained (random init)", "LP", "FT"]
    assert table.loc["LP", "cb paper"] == 33.5 and table.loc["FT", "cb ours"] == "1.1 ± 0"


def test_feature_table_marks_unchanged_rows_with_a_dash(monkeypatch):
    monkeypatch.setattr(
        tables,
        "feature_stats",
        lambda run, split="test", before=False: {
            "CS": 0.5,
            "Diff": 0.0 if before else 2.0,
            "Diff_norm": 0.1,
            "FDR": 10.0,
            "FDR_k": 16,
        },
    )
    study = grid(
        {"lp": lambda seed, c, s: head(1.0, 30.0), "ft": lambda seed, c, s: head(1.0, 1.1)}, datasets=("rte",)
    )
    table = tables.feature_table(study, "rte")
    assert table.loc["Pre-trained", "Diff(F) ours"] == "–" and table.loc["LP", "Diff(F) ours"] == "–"
    assert table.loc["FT", "Diff(F) ours"] == "2 ± 0"
    assert table.loc["Pre-trained", "Diff(F) paper"] == "–"  # the paper reports none there
    assert "Norm(C) paper" in table.columns
    assert {"FDR(F) 16-d ours", "FDR(F) paper, full-d"} <= set(table.columns)


def test_tables_show_no_nan_and_whole_numbers_as_integers():
    import pandas as pd

    from lpft_nb.report.format import tidy

    table = tidy(pd.DataFrame({"n": [52.0, float("nan")], "paper": [None, 33.5], "text": ["a", "b"]}))
    assert table.to_dict("list") == {"n": [52, "–"], "paper": ["–", 33.5], "text": ["a", "b"]}
    study = grid(
        {"lp": lambda seed, c, s: head(1.0, 30.0), "ft": lambda seed, c, s: head(1.0, 1.1)},
        datasets=("cb", "amazon"),
    )
    shown = tables.head_norm_table(study).to_string()
    assert "NaN" not in shown and "None" not in shown


def test_scaling_table_has_a_row_per_method_and_scale(monkeypatch):
    monkeypatch.setattr(
        tables, "feature_stats", lambda run, split="test", before=False: run.metrics["fs"][split]
    )

    def make(seed, c, s):
        return head(s, 1.0, fs={"test": {"Diff": 1.0 / s}}, test={"accuracy": 0.5, "n": 10})

    study = grid({"ft": make, "lp_ft": make}, head_scales=(0.1, 1.0, 10.0))
    table = tables.scaling_table(study, "cb")
    assert len(table) == 6 and list(table.columns) == ["‖V‖ at start", "Diff(F)", "test accuracy"]
    assert table.loc[("FT", 10.0), "Diff(F)"].startswith("0.1 ± ")


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
    broken = SpanExperiment("gd", 10, np.full(3, 1e-3), np.ones(3), 0.1, 1.0)
    assert (
        corollary_claim(broken).status == "does not hold" and "code is wrong" in corollary_claim(broken).why
    )


@pytest.mark.parametrize(
    "lp_ft_diff, expected", [(0.2, "holds"), (1.0, "inconclusive"), (3.0, "does not hold")]
)
def test_controlled_m3_compares_at_ft_rate_and_says_so(lp_ft_diff, expected):
    jitter = {1: -0.05, 2: 0.0, 3: 0.05}

    def diff(value):
        return lambda seed, c, s: head(1.0, 1.0, fs={"test": {"Diff": value + jitter[seed]}})

    study = grid({"ft": diff(1.0), "lp_ft": diff(lp_ft_diff)})
    study.settings = {"lr": 5e-5, "batch_size": 16}
    (claim,) = claim_rules.controlled_feature_change_claims([study])
    assert claim.id == "M3" and claim.status == expected
    assert "controlled (both at lr 5e-05, batch 16)" in claim.statement and claim.seeds == "3 vs 3"


def test_controlled_table_puts_both_protocols_side_by_side(monkeypatch):
    monkeypatch.setattr(tables, "feature_stats", lambda run, split="test": run.metrics["fs"][split])
    main = grid(
        {
            m: lambda seed, c, s, v=v: head(1, 1, fs={"test": {"Diff": v}})
            for m, v in (("ft", 2.0), ("lp_ft", 0.5))
        }
    )
    ctrl = grid(
        {
            m: lambda seed, c, s, v=v: head(1, 1, fs={"test": {"Diff": v}})
            for m, v in (("ft", 2.0), ("lp_ft", 1.5))
        }
    )
    table = tables.controlled_table(main, [ctrl])
    assert list(table.columns) == ["FT", "LP-FT, paper's rate", "LP-FT at FT's rate"]
    assert table.loc[("CB", "C chosen by CV")].tolist() == ["2 ± 0", "0.5 ± 0", "1.5 ± 0"]


@pytest.mark.parametrize("train_accuracy, kind", [(1.0, "identity"), (0.9, "claim")])
def test_m1_at_a_fixed_weak_c_on_separable_data_is_an_identity(train_accuracy, kind):
    arrays = {"labels_train": np.zeros(120), "head_weight_final": np.zeros((3, 384))}
    study = grid(
        {
            "lp": lambda seed, c, s: head(
                1.0, 1.0, lp={"weight_norm": 40.0, "C": c, "train_accuracy": train_accuracy}
            ),
            "ft": lambda seed, c, s: head(1.0 + 0.01 * seed, 1.05),
        },
        lp_Cs=(100.0,),
    )
    for run in study.results.values():
        run.arrays.update(arrays)
    claim = by_statement(claim_rules.dynamics_claims(study), "after LP ≥ 10 × ‖V‖ at random init")
    assert claim.kind == kind
    assert ("120 examples in 384 dimensions" in claim.why) == (kind == "identity")
