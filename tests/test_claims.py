import json

import numpy as np
import pytest

from lpft_nb.report.claims import (
    CLAIMS_MIME,
    VERDICT_MIME,
    Claim,
    adjust_notebooks,
    adjust_records,
    claims_from_notebook,
    compare,
    exact,
    exceeds,
    gather_table,
    statement_conflicts,
)


def test_compare_is_inconclusive_inside_the_noise_and_decisive_outside():
    assert compare("M3", "p", "s", "–", [3.0, 3.2, 3.1], [1.0, 1.1, 1.2]).status == "holds"
    assert compare("M3", "p", "s", "–", [1.0, 1.1, 1.2], [3.0, 3.2, 3.1]).status == "does not hold"
    constant = compare("M3", "p", "s", "–", [3.0, 3.1, 3.2], [1.0, 1.1, 1.2])  # the same gap in every seed
    assert constant.status == "inconclusive" and "no noise estimate" in constant.why
    noisy = compare("M3", "p", "s", "–", [1.0, 3.0, 2.0], [2.0, 1.0, 2.5])
    assert noisy.status == "inconclusive" and noisy.mde > 0 and "detectable at 80 % power" in noisy.why


def test_a_book_tolerance_needs_its_source_and_is_shown_at_half_and_double():
    with pytest.raises(ValueError, match="source"):
        compare("M1", "p", "s", "–", [30.0, 31.0, 29.0], [1.0, 1.1, 0.9], factor=10)
    claim = compare("M1", "p", "s", "–", [15.0, 15.5, 14.5], [1.0, 1.02, 0.98], factor=10, source="book")
    assert claim.tolerance == "factor 10" and claim.tolerance_source == "book"
    assert claim.status == "holds"
    assert claim.sensitivity.startswith("at half: holds") and "at double: does not hold" in claim.sensitivity
    paper = exceeds("K2", "p", "s", "–", [0.995, 0.996, 0.997], 0.99, source="paper", name="r")
    assert paper.tolerance_source == "paper" and paper.sensitivity == ""


def test_exact_quantities_are_compared_exactly_only_when_no_seed_changes_them():
    same = exact("K4", "p", "s", "–", [40, 40, 40], [10, 10, 10])
    assert same.status == "holds" and same.p is None and same.rule.startswith("exact comparison")
    assert exact("K4", "p", "s", "–", [9, 9, 9], [10, 10, 10]).status == "does not hold"
    varying = exact("K4", "p", "s", "–", [40, 41, 39], [10, 12, 11])  # random ranks: tested, adjusted
    assert varying.p is not None and varying.status == "holds"
    one = exact("K4", "p", "s", "–", [40], [10])
    assert one.status == "inconclusive" and one.p is None


def test_a_claim_rejects_an_unknown_status():
    with pytest.raises(ValueError):
        Claim("M1", "p", "s", "–", "–", "probably")


def test_adjusted_statuses_follow_benjamini_hochberg_and_each_check_counts_once():
    from scipy.stats import false_discovery_control

    def record(i, p, side="holds", page="norms"):
        return {
            "id": "M3",
            "page": page,
            "statement": f"s{i}",
            "ours": "o",
            "kind": "claim",
            "p": p,
            "side": side,
            "status": "holds" if p < 0.05 else "inconclusive",
            "why": "w",
        }

    ps = [0.001, 0.012, 0.03, 0.04, 0.2]
    records = [record(i, p) for i, p in enumerate(ps)] + [record(1, 0.012, page="lora")]  # a repeat
    records.append({**record(9, 0.001), "kind": "identity"})  # identities are not adjusted
    adjust_records(records)
    expected = false_discovery_control(ps, method="bh")
    assert [r["p_adjusted"] for r in records[:5]] == pytest.approx(list(expected))
    assert records[5]["p_adjusted"] == records[1]["p_adjusted"]
    assert [r["status"] for r in records[:5]] == [
        "holds",
        "holds",
        "inconclusive",
        "inconclusive",
        "inconclusive",
    ]
    assert "not after the adjustment" in records[2]["why"]
    assert records[6].get("p_adjusted") is None and records[6]["status"] == "holds"


def test_a_failing_check_stays_a_failure_through_the_adjustment():
    failing = compare("M1", "p", "C = 100: s", "–", [1.0, 1.1, 1.2], [3.0, 3.2, 3.1])
    records = [failing.__dict__.copy()]
    adjust_records(records)
    assert records[0]["status"] == "does not hold" and records[0]["kind"] == "claim"


def test_two_records_with_one_statement_and_different_numbers_are_refused(tmp_path):
    rec = {"id": "K5", "page": "lora", "statement": "same words", "paper": "p", "status": "holds", "why": "w"}
    assert statement_conflicts([{**rec, "ours": "0.14"}, {**rec, "ours": "0.20"}]) == [("K5", "same words")]
    _notebook(tmp_path / "lora.ipynb", [{**rec, "ours": "0.14"}, {**rec, "ours": "0.20"}])
    with pytest.raises(ValueError, match="share an id and statement"):
        gather_table(tmp_path, ["lora"], {"K5": "k"}, {})


def test_the_build_rewrites_each_pages_tables_and_verdict_with_the_adjusted_statuses(tmp_path):
    from lpft_nb.report.claims import _claims_output, _verdict_output

    nominal = compare("M3", "norms", "s", "–", [3.0, 3.1, 3.3], [2.9, 3.0, 3.0])
    others = [compare("M4", "norms", f"t{i}", "–", [1.0, 1.2, 0.9], [1.1, 1.0, 1.05]) for i in range(8)]
    checks = [nominal, *others]
    nb = {
        "cells": [
            {
                "cell_type": "code",
                "outputs": [
                    {"output_type": "display_data", "data": _claims_output([c.__dict__ for c in checks])}
                ],
            },
            {
                "cell_type": "code",
                "outputs": [{"output_type": "display_data", "data": _verdict_output(checks, {})}],
            },
        ]
    }
    path = tmp_path / "norms.ipynb"
    path.write_text(json.dumps(nb))
    counts = adjust_notebooks([path], {"M3": "m3"})
    assert counts["tested"] == 9
    out = json.loads(path.read_text())
    records = out["cells"][0]["outputs"][0]["data"][CLAIMS_MIME]
    assert all(r["p_adjusted"] is not None and r["p_adjusted"] >= r["p"] for r in records)
    assert "(adj.)" in out["cells"][0]["outputs"][0]["data"]["text/html"]
    verdict = out["cells"][1]["outputs"][0]["data"]
    assert VERDICT_MIME in verdict and "after the book-wide adjustment" in verdict["text/markdown"]


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
    repeated = [
        {**rec, "page": "lora"},
        {**identity, "page": "lora"},
        {**rec, "page": "lora", "statement": "s on other runs", "ours": "o2"},
    ]
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


def test_the_rule_paragraph_is_computed_from_the_records():
    import pandas as pd

    from lpft_nb.report.claims import rule_markdown

    records = [
        compare("M3", "p", "a", "–", [3.0, 3.2, 3.1], [1.0, 1.1, 1.2]).__dict__,
        compare("M3", "p", "b", "–", [1.0, 3.0, 2.0], [2.0, 1.0, 2.5], paper_effect=0.1).__dict__,
        compare("K2", "p", "c", "–", [3.0], [1.0]).__dict__,
    ]
    adjust_records(records)
    text = rule_markdown(pd.DataFrame(records))
    assert "tested 2 records" in text and "Benjamini–Hochberg" in text
    assert "1 reach p < 5% on their own, and 1 after" in text


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


def test_bf16_is_adopted_only_when_fast_enough_and_numerically_equivalent():
    from lpft_nb.precision import METRICS, STEP, bf16_decision

    def speed(fp32_step, bf16_step):
        return {"pairs": [{"fp32": {STEP: str(fp32_step)}, "bf16": {STEP: str(bf16_step)}}]}

    def runs(shift):
        rng = np.random.default_rng(0)
        rows = []
        for method in ("ft", "lp_ft"):
            for seed in (1, 2, 3):
                fp32 = {name: 10.0 + rng.normal() for name in METRICS}
                bf16 = {name: v + shift + 0.001 * rng.normal() for name, v in fp32.items()}
                rows.append({"method": method, "seed": seed, "fp32": fp32, "bf16": bf16})
        return {"runs": rows}

    assert bf16_decision(speed(0.75, 0.5), runs(0.0))["precision"] == "bf16"  # 1.5x, equivalent
    off = bf16_decision(speed(0.75, 0.5), runs(2.0))  # shifted by about two seed spreads
    assert off["precision"] == "fp32" and not off["numerics"]["equivalent"].any()
    assert bf16_decision(speed(0.6, 0.5), runs(0.0))["precision"] == "fp32"  # 1.2x
    identical = runs(0.0)
    for row in identical["runs"]:
        row["bf16"] = dict(row["fp32"])  # the same numbers in both precisions: equivalent
    assert bf16_decision(speed(0.75, 0.5), identical)["numerics"]["equivalent"].all()
