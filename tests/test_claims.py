import json

import numpy as np
import pytest

from lpft_nb.report.claims import (
    CLAIMS_MIME,
    LEVEL,
    RULE,
    Claim,
    claims_from_notebook,
    compare,
    exceeds,
    gather_table,
    seeds_needed,
    within_factor,
)


def test_compare_is_inconclusive_inside_the_noise_and_decisive_outside():
    assert compare("M1", "p", "s", "–", [10.0, 10.2], [1.0, 1.1]).status == "holds"
    assert compare("M1", "p", "s", "–", [1.0, 1.1], [10.0, 10.2]).status == "does not hold"
    assert compare("M1", "p", "s", "–", [1.0, 3.0], [2.0, 2.1]).status == "inconclusive"
    assert compare("M1", "p", "s", "–", [5.0], [4.0], se_a=1.0, se_b=1.0).status == "inconclusive"
    # one value per side with a known per-example error is enough for a verdict
    assert compare("A1", "p", "s", "–", [80.0], [60.0], se_a=3.0, se_b=3.0).status == "holds"


def test_one_value_per_side_without_a_per_example_error_is_inconclusive():
    claim = compare("M6", "p", "s", "–", [50.0], [1.0], factor=10)
    assert claim.status == "inconclusive" and claim.why.startswith("one seed")
    assert claim.seeds == "1 vs 1" and claim.rule == RULE


def _decisive_rate(margin: float, k: int, se: float = 0.0, trials: int = 4000, seed: int = 0) -> float:
    """Share of decisive verdicts on synthetic per-seed values: k seeds per side, seed sd 1, a true
    difference `margin`, and a per-example error `se` drawn once per side as the test set would."""
    rng = np.random.default_rng(seed)
    decisive = 0
    for _ in range(trials):
        a = rng.normal(margin + rng.normal(0, se), 1.0, k)
        b = rng.normal(rng.normal(0, se), 1.0, k)
        decisive += compare("X", "p", "s", "–", a, b, se_a=se, se_b=se).status != "inconclusive"
    return decisive / trials


@pytest.mark.parametrize("k, se", [(2, 0.0), (3, 0.0), (3, 0.5), (5, 1.0)])
def test_the_rule_is_decisive_at_most_at_its_level_when_there_is_no_difference(k, se):
    # 4000 trials: the rate's Monte Carlo sd at 5 % is 0.35 %; allow three of them
    assert _decisive_rate(0.0, k, se) <= LEVEL + 0.011


@pytest.mark.parametrize("k, se", [(3, 0.0), (5, 0.5)])
def test_the_rule_is_decisive_on_a_large_difference(k, se):
    assert _decisive_rate(8.0, k, se, trials=500) >= 0.95


@pytest.mark.parametrize("k", [2, 3, 5])
def test_the_threshold_rule_is_decisive_at_most_at_its_level_on_the_threshold(k):
    rng = np.random.default_rng(k)
    verdicts = [exceeds("K2", "p", "s", "–", rng.normal(0.9, 0.05, k), 0.9).status for _ in range(4000)]
    assert np.mean([v != "inconclusive" for v in verdicts]) <= LEVEL + 0.011


def test_the_threshold_rule_in_both_directions():
    assert exceeds("K2", "p", "s", "–", [0.97, 0.98, 0.99], 0.9).status == "holds"
    assert exceeds("K2", "p", "s", "–", [0.5, 0.52, 0.49], 0.9).status == "does not hold"
    below = exceeds("K4", "p", "s", "–", [10.0, 11.0, 12.0], 24.0, name="rank(P)", below=True)
    assert below.status == "holds" and below.why.startswith("rank(P) is below the threshold 24")
    assert exceeds("K4", "p", "s", "–", [30.0, 31.0, 32.0], 24.0, below=True).status == "does not hold"
    wide = exceeds("K2", "p", "s", "–", [0.8, 1.2, 1.0], 0.9)
    assert wide.status == "inconclusive" and wide.seeds_needed is not None
    one = exceeds("K2", "p", "s", "–", [0.99], 0.9)
    assert one.status == "inconclusive" and one.why.startswith("one seed") and one.rule == RULE


def test_within_factor_needs_more_than_one_value():
    claim = within_factor("M2", "p", "s", "–", [1.0], 1.0, 1.5)
    assert claim.status == "inconclusive" and claim.why.startswith("one seed")


def _values(mean: float, k: int) -> np.ndarray:
    """k values with exactly this mean and sample sd 1."""
    z = np.linspace(-1.0, 1.0, k)
    return mean + (z - z.mean()) / z.std(ddof=1)


def test_an_inconclusive_comparison_says_how_many_seeds_would_decide_it():
    claim = compare("M3", "p", "s", "–", _values(0.5, 3), _values(0.0, 3))  # margin 0.5, seed sd 1
    assert claim.status == "inconclusive" and claim.seeds_needed is not None
    k = claim.seeds_needed
    assert k > 3 and f"about {k} seeds" in claim.why
    # with that many seeds at the same spread the margin is decisive; with one fewer it is not
    assert compare("M3", "p", "s", "–", _values(0.5, k), _values(0.0, k)).status == "holds"
    assert compare("M3", "p", "s", "–", _values(0.5, k - 1), _values(0.0, k - 1)).status == "inconclusive"
    assert seeds_needed(0.5, 1.0, 1.0, 10.0, 10.0, 1.0) is None  # the per-example error alone is too large


def test_within_factor():
    assert within_factor("M2", "p", "s", "–", [1.0, 1.2], 1.0, 1.5).status == "holds"
    assert within_factor("M2", "p", "s", "–", [1.0, 1.6], 1.0, 1.5).status == "does not hold"


def test_a_claim_rejects_an_unknown_status():
    with pytest.raises(ValueError):
        Claim("M1", "p", "s", "–", "–", "probably")


def _notebook(path, records):
    nb = {
        "cells": [
            {
                "cell_type": "code",
                "outputs": [
                    {"output_type": "display_data", "data": {CLAIMS_MIME: records, "text/plain": "x"}}
                ],
            }
        ]
    }
    path.write_text(json.dumps(nb))


def test_gather_table_collects_records_and_marks_unchecked_ids(tmp_path):
    rec = {
        "id": "M1",
        "page": "dynamics",
        "statement": "s",
        "paper": "p",
        "ours": "o",
        "status": "holds",
        "why": "w",
    }
    _notebook(tmp_path / "dynamics.ipynb", [rec, {**rec, "id": "K2", "status": "inconclusive"}])
    assert claims_from_notebook(tmp_path / "dynamics.ipynb")[1]["id"] == "K2"
    checklist = {"M1": "a", "K2": "b", "A3": "c"}
    table, counts = gather_table(tmp_path, ["dynamics", "norms"], checklist, {"A3": "no PubMed data"})
    assert counts == {"holds": 1, "does not hold": 0, "inconclusive": 1, "not run": 2}
    assert table.loc[table["id"] == "A3", "why"].item() == "no PubMed data"
    assert "was not executed" in table.loc[table["page"] == "norms", "statement"].item()
    assert list(table["id"])[:2] == ["M1", "K2"]  # checklist order
    assert np.all(table["status"].isin(["holds", "does not hold", "inconclusive", "not run"]))


def test_a_claim_links_to_the_figure_or_table_that_shows_its_numbers(monkeypatch):
    import pandas as pd

    from lpft_nb.report import claims

    shown = []
    monkeypatch.setattr("IPython.display.display", lambda obj, raw=False: shown.append(obj))
    checks = [
        Claim("M1", "dynamics", "s", "–", "–", "holds"),
        Claim("M9", "dynamics", "s", "–", "–", "holds"),
    ]
    claims.show_claims(checks, {"M1": "fig-head-norms"})
    records = shown[0][CLAIMS_MIME]
    assert [r["evidence"] for r in records] == ["fig-head-norms", ""]
    assert '<a href="#fig-head-norms">M1</a>' in shown[0]["text/html"]
    page = claims.claims_page_html(pd.DataFrame(records))
    assert '<a href="dynamics.html#fig-head-norms">M1</a>' in page and ">M9</td>" in page


def test_a_check_shown_twice_is_counted_once_and_identities_are_not_counted(tmp_path):
    from lpft_nb.report.claims import summary_table

    rec = {"id": "M3", "statement": "s", "paper": "p", "ours": "o", "status": "holds", "why": "w"}
    identity = {**rec, "id": "K1", "kind": "identity"}
    _notebook(tmp_path / "norms.ipynb", [{**rec, "page": "norms"}])
    _notebook(tmp_path / "ntk.ipynb", [{**identity, "page": "ntk"}])
    repeated = [{**rec, "page": "lora"}, {**identity, "page": "lora"}, {**rec, "page": "lora", "ours": "o2"}]
    _notebook(tmp_path / "lora.ipynb", repeated)
    table, counts = gather_table(tmp_path, ["norms", "ntk", "lora"], {"M3": "a", "K1": "b"}, {})
    assert len(table) == 3  # M3 (norms, also on lora), K1 (ntk, also on lora), M3 with other numbers
    assert table.loc[(table["page"] == "norms"), "also_on"].item() == "lora"
    assert counts["holds"] == 2  # the two different M3 checks; the identity is not counted
    assert list(summary_table(table, {"M3": "a", "K1": "b"}).index) == ["M3"]
    with pytest.raises(ValueError, match="kind"):
        Claim("K1", "p", "s", "–", "–", "holds", kind="obvious")


def test_the_verdict_is_computed_from_the_records():
    from lpft_nb.report.claims import verdict_markdown

    checks = [
        Claim("M1", "p", "CB: a", "–", "–", "holds"),
        Claim("M1", "p", "RTE: a", "–", "–", "does not hold"),
        Claim("M2", "p", "CB: b", "–", "–", "inconclusive"),
        Claim("K1", "p", "P equal", "–", "–", "holds", kind="identity"),
    ]
    text = verdict_markdown(checks, {"M1": "LP grows the head"})
    assert "**M1** (LP grows the head): of 2 checks, 1 holds, 1 does not hold; not holding: RTE: a." in text
    assert "**M2** (M2): of 1 checks, 1 inconclusive." in text
    assert "Identities (tests of the code, not of the paper): 1 of 1 hold." in text
    flipped = [Claim(c.id, c.page, c.statement, "–", "–", "holds", kind=c.kind) for c in checks]
    assert "not holding" not in verdict_markdown(flipped, {})


def test_the_rule_paragraph_counts_the_seeds_behind_the_comparisons():
    import pandas as pd

    from lpft_nb.report.claims import rule_markdown

    records = [
        compare("M3", "p", "s", "–", [3.0, 3.1, 3.2], [1.0, 1.1, 1.2]),
        compare("M3", "p", "s", "–", [3.0, 3.1, 3.2], [1.0, 1.1, 1.2]),
        compare("K2", "p", "s", "–", [3.0], [1.0]),
        within_factor("M2", "p", "s", "–", [1.0], 1.0, 1.5),
    ]
    text = rule_markdown(pd.DataFrame([r.__dict__ for r in records]))
    assert "the 3 comparisons rest on 3 vs 3 seeds in 2 checks; 1 vs 1 seeds in 1 check" in text
    assert "1 of them are inconclusive because a side has one value" in text and "5%" in text


def test_status_changes_match_checks_by_page_id_and_place():
    from lpft_nb.report.claims import status_changes

    def check(page, cid, statement, status, kind="claim"):
        return {"page": page, "id": cid, "statement": statement, "status": status, "kind": kind}

    before = [
        check("dynamics", "M1", "LP head 15.6 > FT 1.2", "holds"),
        check("dynamics", "M1", "LP head 3.1 > FT 1.2", "inconclusive"),
        check("norms", "M3", "an identity", "holds", kind="identity"),
    ]
    after = [
        check("dynamics", "M1", "LP head 15.9 > FT 1.3", "holds"),  # numbers differ, same check
        check("dynamics", "M1", "LP head 3.0 > FT 1.3", "does not hold"),
        check("norms", "M6", "only in the second build", "holds"),
    ]
    table = status_changes(before, after)
    assert table["changed"].tolist() == [False, True, True]
    assert table[["before", "after"]].values.tolist() == [
        ["holds", "holds"],
        ["inconclusive", "does not hold"],
        ["absent", "holds"],
    ]


def test_precision_table_shows_means_and_the_smaller_speed_up_over_the_pairs():
    from lpft_nb.report.tables import precision_table

    def pair(fp32_step, bf16_step):
        common = {"model": "m"}
        return {
            "fp32": {**common, "step (s)": str(fp32_step), "throughput (examples/s)": "100.0"},
            "bf16": {**common, "step (s)": str(bf16_step), "throughput (examples/s)": "150.0"},
        }

    table = precision_table({"pairs": [pair(0.8, 0.5), pair(0.75, 0.5)]})
    assert list(table.index) == ["step (s)", "throughput (examples/s)"]  # untimed rows left out
    assert table.loc["step (s)", "fp32"] == pytest.approx(0.775)
    assert table.loc["step (s)", "bf16 speed-up"] == 1.5  # min(0.8 / 0.5, 0.75 / 0.5)
    assert table.loc["throughput (examples/s)", "bf16 speed-up"] == 1.5  # a rate: bf16 / fp32


def test_bf16_is_adopted_only_when_fast_enough_and_no_claim_status_changes():
    from lpft_nb.report.claims import BF16_STEP, bf16_decision

    def speed(fp32_step, bf16_step):
        return {"pairs": [{"fp32": {BF16_STEP: str(fp32_step)}, "bf16": {BF16_STEP: str(bf16_step)}}]}

    def claims(*bf16_statuses):
        check = {"page": "norms", "id": "M3", "statement": "s", "kind": "claim"}
        fp32 = [{**check, "status": "holds"} for _ in bf16_statuses]
        return {"claims": {"fp32": fp32, "bf16": [{**check, "status": s} for s in bf16_statuses]}}

    assert bf16_decision(speed(0.75, 0.5), claims("holds", "holds"))["precision"] == "bf16"  # 1.5x, none
    assert bf16_decision(speed(0.75, 0.5), claims("holds", "inconclusive"))["precision"] == "fp32"
    assert bf16_decision(speed(0.6, 0.5), claims("holds", "holds"))["precision"] == "fp32"  # 1.2x
    assert bf16_decision(speed(0.75, 0.5), claims("holds", "inconclusive"))["changed"] == 1
