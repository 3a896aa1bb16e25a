"""Claim checks: computed from measured numbers, shown on the page, recorded for the `claims` page.

Every check returns a `Claim` whose status is computed from the numbers: ``holds``, ``does not hold`` or
``inconclusive`` (``not run`` when no page can compute it). A comparison is a test (`stats`): the difference's
error counts the seeds and the test examples once each, pairs are tested as pairs, "comparable" and "≈" are
equivalence tests (TOST) and "≥" a non-inferiority test, each with a stated margin whose source (the paper's
or the book's) is in the record. A record's status on its page is at the nominal level; the build then
adjusts every tested record of the book together (Benjamini–Hochberg, `stats.LEVEL`) and rewrites each
page's table and verdict with the adjusted p (`adjust_records`, `lpft_nb.book.build`).

Kinds (`KINDS`) are fixed by the code that makes a check, before its numbers are read: a ``claim`` is the
paper's and can fail; a ``hypothesis`` is the book's own; an ``identity`` holds by construction (a test of
the code); a ``vacuous`` check cannot inform at the build's scale, by a bound computed from the setup alone.
`show_claims` renders a table and embeds the records as JSON under `CLAIMS_MIME`.
"""

from __future__ import annotations

import html
import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields

import numpy as np
from numpy.typing import ArrayLike

from . import stats
from .format import fmt
from .stats import LEVEL, Sample

CLAIMS_MIME = "application/vnd.lpft.claims+json"
VERDICT_MIME = "application/vnd.lpft.verdict+json"
STATUSES = ("holds", "does not hold", "inconclusive", "not run")
KINDS = ("claim", "identity", "hypothesis", "vacuous")
TESTED_KINDS = ("claim", "hypothesis")  # the records whose p-values enter the book-wide adjustment
SOURCES = ("paper", "book")


@dataclass
class Claim:
    """One check: claim id (`paper.CHECKLIST`), page, statement, paper value, our value, status, reason;
    `evidence`: the HTML id of the figure or table on its page that shows the numbers ("" when none);
    `kind` (`KINDS`). Tested checks also carry the test, its p, the adjusted p (after the build's
    adjustment), the side the estimate points to, the estimate with its error, the tolerance (a factor, a
    threshold or a margin) with its source, the statuses at half and double a book tolerance, and for an
    inconclusive one the minimal detectable effect at 80 % power beside the paper's effect."""

    id: str
    page: str
    statement: str
    paper: str
    ours: str
    status: str
    why: str = ""
    evidence: str = ""
    kind: str = "claim"
    rule: str = ""  # the test, in words
    level: float | None = None
    seeds: str = ""  # values per side, e.g. "3 vs 3"
    p: float | None = None
    p_adjusted: float | None = None
    side: str = ""  # where the estimate points: "holds" or "does not hold"
    estimate: float | None = None
    se: float | None = None
    df: float | None = None
    tolerance: str = ""  # e.g. "factor 10", "margin 1 point", "threshold 0.3"; "" when none
    tolerance_source: str = ""  # "paper" (with its number in `tolerance`) or "book"
    sensitivity: str = ""  # a book tolerance: the nominal status at half and at double it
    mde: float | None = None  # minimal detectable effect at 80 % power, in the estimate's units
    paper_effect: float | None = None  # the paper's effect in the same units, where they are commensurate
    decidable: bool | None = None  # False: the paper's effect lies below the minimal detectable effect

    def __post_init__(self):
        if self.status not in STATUSES:
            raise ValueError(f"status must be one of {STATUSES}, got {self.status!r}")
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {self.kind!r}")
        if self.tolerance and self.tolerance_source not in SOURCES:
            raise ValueError(f"a tolerance needs its source ({SOURCES}): {self.statement!r}")

    @classmethod
    def from_record(cls, record: dict) -> Claim:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in record.items() if k in names})


RULE = (
    f"a t-test of the difference over seeds and test examples (two-way random effects, pairs as pairs), "
    f"equivalence by TOST and non-inferiority by a one-sided test with a stated margin; the false-discovery "
    f"rate over every tested record of the build held at {LEVEL:.0%} (Benjamini–Hochberg)"
)


def _sample(x) -> Sample:
    return x if isinstance(x, Sample) else Sample(np.asarray(x, dtype=float))


def _lonely(samples: dict[str, Sample]) -> list[str]:
    return [name for name, s in samples.items() if len(s.values) < 2]


def tested(
    claim_id: str,
    page: str,
    statement: str,
    paper: str,
    ours: str,
    test_at: Callable[[float | None], stats.Test],
    *,
    samples: dict[str, Sample],
    tolerance: float | None = None,
    tolerance_text: str = "",
    source: str = "",
    paper_effect: float | None = None,
    effect_offset: float = 0.0,
    kind: str = "claim",
    describe: Callable[[stats.Test], str] = lambda t: "",
) -> Claim:
    """A check decided by `test_at(tolerance)` (a `stats.Test`); with a book tolerance, also at half and at
    double it (`sensitivity`). One value on a side (one seed) gives no verdict, whatever else is known.
    `paper_effect` + `effect_offset` is the paper's effect in the units of the test's estimate (a
    non-inferiority test is shifted by its margin)."""
    seeds = " vs ".join(str(len(s.values)) for s in samples.values())
    record = {"rule": RULE, "level": LEVEL, "seeds": seeds, "kind": kind}
    if tolerance_text:
        record.update(tolerance=tolerance_text, tolerance_source=source)
    lonely = _lonely(samples)
    if lonely:
        why = f"one seed: one value of {' and '.join(lonely)}, so no seed spread and no test"
        return Claim(claim_id, page, statement, paper, ours, "inconclusive", why, **record)
    test = test_at(tolerance)
    est = test.estimate
    if est.se == 0:
        why = "the difference is the same in every seed and no test example enters it: no noise estimate"
        return Claim(claim_id, page, statement, paper, ours, "inconclusive", why, **record)
    status = stats.status(test.side, test.p)
    if source == "book" and tolerance is not None:
        record["sensitivity"] = "; ".join(
            f"at {label}: {stats.status((t := test_at(value)).side, t.p)} (p = {t.p:.2g})"
            for label, value in (("half", tolerance / 2), ("double", tolerance * 2))
        )
    record.update(
        p=test.p,
        side=test.side,
        estimate=est.value,
        se=est.se,
        df=est.df,
        mde=test.mde,
        paper_effect=paper_effect,
    )
    if status == "inconclusive" and paper_effect is not None and np.isfinite(test.mde):
        record["decidable"] = bool(abs(paper_effect + effect_offset) >= test.mde)
    noise = (
        f"se {est.se:.2g} (seeds {np.sqrt(est.seed_var):.2g}, test examples {np.sqrt(est.example_var):.2g})"
    )
    df = "" if np.isinf(est.df) else f", {est.df:.1f} df"
    why = f"{describe(test)}{test.name}: p = {test.p:.2g}{df}; {noise}"
    if status == "inconclusive":
        why += f"; detectable at 80 % power: {test.mde:.3g}"
        if record.get("decidable") is False:
            why += (
                f", above the paper's effect ({paper_effect:.3g}, {paper_effect + effect_offset:.3g} on the "
                "test's scale): not decidable at this scale"
                if effect_offset
                else f", above the paper's effect {abs(paper_effect):.3g}: not decidable at this scale"
            )
    return Claim(claim_id, page, statement, paper, ours, status, why, **record)


def compare(
    claim_id: str,
    page: str,
    statement: str,
    paper: str,
    a,
    b,
    *,
    factor: float = 1.0,
    source: str = "",
    a_name: str = "A",
    b_name: str = "B",
    paper_effect: float | None = None,
    kind: str = "claim",
) -> Claim:
    """Is mean(a) > factor · mean(b)? `a`, `b`: `stats.Sample`s (or per-seed values) of the same seeds;
    a factor other than 1 is a tolerance and needs its `source`."""
    a, b = _sample(a), _sample(b)
    target = f"{factor:g} × {b_name}" if factor != 1 else b_name
    ours = f"{a_name} = {fmt(a.values)}; {b_name} = {fmt(b.values)}"
    tol = factor if factor != 1 else None

    def describe(t: stats.Test) -> str:
        return f"{a_name} − {target} = {t.estimate.value:.3g}; "

    return tested(
        claim_id,
        page,
        statement,
        paper,
        ours,
        lambda f: stats.directional(stats.difference(a, b, factor=f or 1.0)),
        samples={a_name: a, b_name: b},
        tolerance=tol,
        tolerance_text=f"factor {factor:g}" if tol else "",
        source=source,
        paper_effect=paper_effect,
        kind=kind,
        describe=describe,
    )


def exceeds(
    claim_id: str,
    page: str,
    statement: str,
    paper: str,
    values,
    threshold: float,
    *,
    source: str,
    name: str = "value",
    below: bool = False,
    kind: str = "claim",
) -> Claim:
    """Is mean(values) > threshold (with `below`: < threshold)? A one-sample test over seeds (and test
    examples, when `values` is a `stats.Sample` that holds them). A threshold that is a tolerance names its
    `source` ("paper" or "book"); `source` "" marks one that is no tolerance (the 0 of a sign: a slope that
    falls), which is then neither recorded as one nor varied."""
    v = _sample(values)
    signed = -v if below else v
    ours = f"{name} = {fmt(v.values)}; threshold {threshold:.3g}"

    def describe(t: stats.Test) -> str:
        return f"{name} − {threshold:.3g} = {float(v.values.mean()) - threshold:.3g}; "

    def test_at(tolerance: float | None) -> stats.Test:
        level = threshold if tolerance is None else tolerance
        return stats.directional(stats.difference(signed, threshold=-level if below else level))

    return tested(
        claim_id,
        page,
        statement,
        paper,
        ours,
        test_at,
        samples={name: v},
        tolerance=threshold if source else None,
        tolerance_text=f"threshold {threshold:g}" if source else "",
        source=source,
        kind=kind,
        describe=describe,
    )


def non_inferior(
    claim_id: str,
    page: str,
    statement: str,
    paper: str,
    a,
    b,
    *,
    margin: float,
    source: str,
    unit: str = "",
    a_name: str = "A",
    b_name: str = "B",
    paper_effect: float | None = None,
    kind: str = "claim",
) -> Claim:
    """Is mean(a) ≥ mean(b) − margin? A one-sided non-inferiority test at the level, the level of each of
    TOST's tests (holds when the 90 % interval of the difference lies above −margin; does not hold when it
    lies below)."""
    a, b = _sample(a), _sample(b)
    ours = f"{a_name} = {fmt(a.values)}; {b_name} = {fmt(b.values)}"

    def describe(t: stats.Test) -> str:
        return f"{a_name} − {b_name} = {t.estimate.value - margin:.3g} against −{margin:g}{unit}; "

    return tested(
        claim_id,
        page,
        statement,
        paper,
        ours,
        lambda m: stats.one_sided(stats.difference(a, b, threshold=-m), "non-inferiority, one-sided t"),
        samples={a_name: a, b_name: b},
        tolerance=margin,
        tolerance_text=f"margin {margin:g}{unit}",
        source=source,
        paper_effect=paper_effect,
        effect_offset=margin,
        kind=kind,
        describe=describe,
    )


def equivalent(
    claim_id: str,
    page: str,
    statement: str,
    paper: str,
    a,
    b=None,
    *,
    margin: float,
    source: str,
    reference: float = 0.0,
    unit: str = "",
    a_name: str = "A",
    b_name: str = "B",
    kind: str = "claim",
) -> Claim:
    """Is |mean(a) − mean(b) − reference| < margin (`b` None: |mean(a) − reference| < margin)? TOST at the
    level: holds when the 90 % interval lies inside ±margin, does not hold when the estimate lies outside and
    the 95 % interval excludes the margin, else inconclusive. Non-significance never makes "holds"."""
    a = _sample(a)
    b = None if b is None else _sample(b)
    ours = f"{a_name} = {fmt(a.values)}" + ("" if b is None else f"; {b_name} = {fmt(b.values)}")
    against = f"{b_name}" if b is not None else f"{reference:g}"

    def describe(t: stats.Test) -> str:
        return f"{a_name} − {against} = {t.estimate.value + (reference if b is not None else 0):.3g}; "

    samples = {a_name: a} if b is None else {a_name: a, b_name: b}
    return tested(
        claim_id,
        page,
        statement,
        paper,
        ours,
        lambda m: stats.equivalent(stats.difference(a, b, threshold=reference), m),
        samples=samples,
        tolerance=margin,
        tolerance_text=f"margin ±{margin:g}{unit}",
        source=source,
        kind=kind,
        describe=describe,
    )


def exact(
    claim_id: str,
    page: str,
    statement: str,
    paper: str,
    a: ArrayLike,
    b: ArrayLike | float,
    *,
    a_name: str = "A",
    b_name: str = "B",
    tolerance_text: str = "",
    source: str = "",
    kind: str = "claim",
) -> Claim:
    """Is a > b, for integer quantities (ranks)? When every seed gives the same values on each side, the
    quantity does not vary with the seed and is compared exactly (no test, nothing to adjust); when it
    varies (each kernel seed draws its own examples), it is tested like any other difference (`compare`,
    paired by seed). One seed is inconclusive."""
    a_arr = np.atleast_1d(np.asarray(a, dtype=float))
    b_arr = np.broadcast_to(np.asarray(b, dtype=float), a_arr.shape).copy()
    if len(a_arr) > 1 and (np.ptp(a_arr) > 0 or np.ptp(b_arr) > 0):
        claim = compare(
            claim_id, page, statement, paper, a_arr, b_arr, a_name=a_name, b_name=b_name, kind=kind
        )
        if tolerance_text:
            claim.tolerance, claim.tolerance_source = tolerance_text, source
        return claim
    ours = f"{a_name} = {fmt(a_arr)}; {b_name} = {fmt(b_arr)}"
    record = {
        "rule": "exact comparison: the same value in every seed",
        "seeds": str(len(a_arr)),
        "kind": kind,
    }
    if tolerance_text:
        record.update(tolerance=tolerance_text, tolerance_source=source)
    if len(a_arr) < 2:
        status, why = "inconclusive", "one seed: an exact comparison needs the same answer in two or more"
    elif a_arr[0] > b_arr[0]:
        status, why = "holds", f"{a_name} {a_arr[0]:g} > {b_name} {b_arr[0]:g} in all {len(a_arr)} seeds"
    else:
        status, why = (
            "does not hold",
            f"{a_name} {a_arr[0]:g} ≤ {b_name} {b_arr[0]:g} in all {len(a_arr)} seeds",
        )
    return Claim(claim_id, page, statement, paper, ours, status, why, **record)


def not_run(claim_id: str, page: str, statement: str, paper: str, why: str) -> Claim:
    return Claim(claim_id, page, statement, paper, "–", "not run", why)


_COLOURS = {"holds": "#1a7f37", "does not hold": "#cf222e", "inconclusive": "#9a6700", "not run": "#57606a"}


def _id_cell(claim_id: str, target: str) -> str:
    """The claim id, linked to `target` (a URL or "#anchor") when there is one."""
    return f'<a href="{html.escape(target)}">{html.escape(claim_id)}</a>' if target else html.escape(claim_id)


def _p_cell(r: dict) -> str:
    """'p 0.012 → 0.048 (adj.)', 'p 0.012 (nominal)' or '–'."""
    p, adj = r.get("p"), r.get("p_adjusted")
    if p is None:
        return "–"
    return f"p {p:.2g} → {adj:.2g} (adj.)" if adj is not None else f"p {p:.2g} (nominal)"


def _tolerance_cell(r: dict) -> str:
    tol = r.get("tolerance") or ""
    return f"{tol} ({r.get('tolerance_source')})" if tol else "–"


def claims_html(claims: list) -> str:
    """The checks of one page as an HTML table (`Claim`s or their records)."""
    rows = []
    for c in claims:
        r = c if isinstance(c, dict) else asdict(c)
        rows.append(
            f"<tr><td>{_id_cell(r['id'], '#' + r['evidence'] if r.get('evidence') else '')}</td>"
            + "".join(
                f"<td>{html.escape(str(x))}</td>"
                for x in (r["statement"], r["paper"], r["ours"], _tolerance_cell(r), _p_cell(r))
            )
            + f'<td style="color:{_COLOURS[r["status"]]};font-weight:bold">{r["status"]}</td>'
            f"<td>{html.escape(r['why'])}</td></tr>"
        )
    head = "".join(
        f"<th>{h}</th>" for h in ("id", "claim", "paper", "ours", "tolerance", "p", "status", "why")
    )
    caption = (
        "The checks of this page, computed from the numbers above; an id links to the figure or table "
        "that shows them. p: the test's p-value and, after the build's book-wide adjustment "
        "(Benjamini–Hochberg), the adjusted one that decides the status."
    )
    return (
        f'<table class="lpft-claims"><caption>{caption}</caption><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table>"
    )


def _claims_output(records: list[dict]) -> dict:
    return {
        "text/html": claims_html(records),
        CLAIMS_MIME: records,
        "text/plain": json.dumps(records, indent=1),
    }


def show_claims(claims: list[Claim], evidence: dict[str, str] | None = None) -> None:
    """Display the claim table and embed the records (JSON) in the notebook output. `evidence` maps a claim
    id to the HTML id of the figure (its `name`) or table (`tables.anchor(label)`) on this page that shows
    its numbers; the id cells and the claims page link there."""
    from IPython.display import display

    for c in claims:
        c.evidence = c.evidence or (evidence or {}).get(c.id, "")
    display(_claims_output([asdict(c) for c in claims]), raw=True)


def claims_from_notebook(path) -> list[dict]:
    """All claim records embedded in an executed notebook (in order)."""
    nb = json.loads(open(path, encoding="utf-8").read())
    found = []
    for cell in nb.get("cells", []):
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            if CLAIMS_MIME in data:
                found.extend(data[CLAIMS_MIME])
    return found


def check_key(record: dict) -> tuple:
    """What makes two records one check: the same claim id, statement and numbers (a page that shows
    another page's check again)."""
    return (record["id"], record["statement"], record["ours"])


def statement_conflicts(records: list[dict]) -> list[tuple[str, str]]:
    """(id, statement) pairs that two records share with different numbers: one statement must name one
    measurement (the kernel pair, the protocol, the LP regularisation)."""
    numbers: dict[tuple[str, str], set] = {}
    for r in records:
        if r.get("ours", "–") != "–":
            numbers.setdefault((r["id"], r["statement"]), set()).add(r["ours"])
    return [key for key, found in numbers.items() if len(found) > 1]


def adjust_records(records: list[dict], level: float = LEVEL) -> list[dict]:
    """Benjamini–Hochberg over every tested record (`TESTED_KINDS`, with a p): each check once (`check_key`),
    its adjusted p and its status from it, written into every copy. Returns the records (changed in place)."""
    unique: dict[tuple, float] = {}
    for r in records:
        if r.get("kind", "claim") in TESTED_KINDS and r.get("p") is not None:
            unique.setdefault(check_key(r), r["p"])
    adjusted = dict(zip(unique, stats.adjust(list(unique.values()))))
    for r in records:
        key = check_key(r)
        if key in adjusted and r.get("kind", "claim") in TESTED_KINDS:
            r["p_adjusted"] = float(adjusted[key])
            r["status"] = stats.status(r["side"], r["p_adjusted"], level)
            if r["status"] != "inconclusive" or "adjusted p" in r["why"]:
                continue
            if r["p"] < level:
                r["why"] += (
                    f"; decisive at the nominal level, not after the adjustment (adjusted p = {r['p_adjusted']:.2g})"
                )
    return records


def adjust_notebooks(paths: list, checklist: dict[str, str]) -> dict:
    """The build's book-wide adjustment: read every claim record of the executed notebooks `paths`, adjust
    them together (`adjust_records`), and rewrite each notebook's claim tables and verdicts with the
    adjusted statuses. Raises ValueError on `statement_conflicts`. Returns counts for the build's summary."""
    notebooks = {path: json.loads(open(path, encoding="utf-8").read()) for path in paths}
    outputs = [
        (path, output)
        for path, nb in notebooks.items()
        for cell in nb.get("cells", [])
        for output in cell.get("outputs", [])
        if CLAIMS_MIME in output.get("data", {})
    ]
    records = [r for _, output in outputs for r in output["data"][CLAIMS_MIME]]
    conflicts = statement_conflicts(records)
    if conflicts:
        raise ValueError(f"two checks share an id and statement but not their numbers: {conflicts[:3]}")
    adjust_records(records)
    for _, output in outputs:
        output["data"] = _claims_output(output["data"][CLAIMS_MIME])
    for path, nb in notebooks.items():
        page_records = [r for p, o in outputs if p == path for r in o["data"][CLAIMS_MIME]]
        for cell in nb.get("cells", []):
            for output in cell.get("outputs", []):
                if VERDICT_MIME in output.get("data", {}):
                    claims = [Claim.from_record(r) for r in page_records]
                    output["data"] = _verdict_output(claims, checklist)
        with open(path, "w", encoding="utf-8") as fh:
            json.dump(nb, fh, indent=1)
    tested_ = {check_key(r): r for r in records if r.get("p_adjusted") is not None}
    return {
        "tested": len(tested_),
        "nominal": sum(r["p"] < LEVEL for r in tested_.values()),
        "adjusted": sum(r["p_adjusted"] < LEVEL for r in tested_.values()),
    }


def gather_table(executed_dir, pages: list[str], checklist: dict[str, str], not_runnable: dict[str, str]):
    """All claim records of the executed `pages` (in order), each check once, plus a `not run` row for
    every checklist id that no page checked. Returns (DataFrame, counts by status of the claims).

    A check that a later page shows again (same id, statement and numbers) is kept once, from the first
    page, with the other pages in `also_on`. Only claims (`kind` "claim") are counted."""
    from pathlib import Path

    import pandas as pd

    records, seen = [], {}
    for page in pages:
        path = Path(executed_dir) / f"{page}.ipynb"
        if not path.is_file():
            why = f"no executed notebook at {path}"
            missing = not_run("–", page, f"the page {page!r} was not executed in this build", "–", why)
            records.append({**asdict(missing), "also_on": ""})
            continue
        for record in claims_from_notebook(path):
            record = {**asdict(Claim.from_record(record)), "also_on": ""}
            key = check_key(record)
            if key in seen:
                first = seen[key]
                first["also_on"] = ", ".join(filter(None, [first["also_on"], record["page"]]))
                continue
            seen[key] = record
            records.append(record)
    conflicts = statement_conflicts(records)
    if conflicts:
        raise ValueError(f"two checks share an id and statement but not their numbers: {conflicts[:3]}")
    checked = {r["id"] for r in records}
    for claim_id, statement in checklist.items():
        if claim_id not in checked:
            why = not_runnable.get(claim_id, "no page of this book checks it yet")
            records.append({**asdict(not_run(claim_id, "–", statement, "–", why)), "also_on": ""})
    order = {cid: i for i, cid in enumerate(checklist)}
    records.sort(key=lambda r: order.get(r["id"], len(order)))
    table = pd.DataFrame(records)
    claims = table[table["kind"] == "claim"]
    counts = {s: int((claims["status"] == s).sum()) for s in STATUSES}
    return table, counts


def status_changes(before: list[dict], after: list[dict]):
    """The claim records (``kind`` "claim") of two builds of the same pages side by side: one row per check,
    matched by page, id and the check's place among that page's checks of that id (statements carry numbers
    that differ between builds), with both statuses and whether it changed. A check found in one build only
    counts as changed."""
    import pandas as pd

    def keyed(records):
        out, seen = {}, {}
        for r in records:
            if r.get("kind", "claim") != "claim":
                continue
            place = seen[(r["page"], r["id"])] = seen.get((r["page"], r["id"]), -1) + 1
            out[(r["page"], r["id"], place)] = r
        return out

    a, b = keyed(before), keyed(after)
    rows = []
    for key in list(a) + [k for k in b if k not in a]:
        ra, rb = a.get(key), b.get(key)
        statement = (ra or rb)["statement"]
        sa, sb = (ra or {}).get("status", "absent"), (rb or {}).get("status", "absent")
        rows.append((key[0], key[1], statement, sa, sb, sa != sb))
    columns = ["page", "id", "check", "before", "after", "changed"]
    return pd.DataFrame(rows, columns=columns)


def summary_table(table, checklist: dict[str, str]):
    """Per claim id: the paper's claim and how many checks hold / do not hold / are inconclusive / not run
    (identities excluded: they are tests of the code, not of the paper)."""
    if "kind" in table:
        table = table[table["kind"] == "claim"]
    counts = table.groupby("id", sort=False)["status"].value_counts().unstack(fill_value=0)
    counts = counts.reindex(columns=[s for s in STATUSES if s in counts.columns])
    counts.insert(0, "the paper's claim", [checklist.get(i, "") for i in counts.index])
    return counts


def claims_page_html(table, caption: str = "") -> str:
    """Gathered checks as one HTML table: id (linked to the figure or table that shows its numbers), the
    page (linked, with the pages that show the same check again), the check, paper, ours, status, why."""
    rows = []
    for _, row in table.iterrows():
        r = {k: (None if isinstance(v, float) and np.isnan(v) else v) for k, v in row.items()}
        page = r["page"]
        on_page = page not in ("–", "")
        evidence = r.get("evidence", "") if on_page else ""
        target = f"{page}.html#{evidence}" if evidence and isinstance(evidence, str) else ""
        link = f'<a href="{html.escape(page)}.html">{html.escape(page)}</a>' if on_page else "–"
        also = r.get("also_on", "")
        if isinstance(also, str) and also:
            link += " (also " + ", ".join(f'<a href="{p}.html">{p}</a>' for p in also.split(", ")) + ")"
        rows.append(
            f"<tr><td>{_id_cell(r['id'], target)}</td><td>{link}</td>"
            + "".join(
                f"<td>{html.escape(str(x))}</td>"
                for x in (
                    r["statement"],
                    r["paper"],
                    r["ours"],
                    _tolerance_cell(r),
                    _p_cell(r),
                )
            )
            + f'<td style="color:{_COLOURS[r["status"]]};font-weight:bold">{r["status"]}</td>'
            f"<td>{html.escape(str(r['why']))}</td></tr>"
        )
    head = "".join(
        f"<th>{h}</th>" for h in ("id", "page", "check", "paper", "ours", "tolerance", "p", "status", "why")
    )
    caption = caption or (
        "Every check of the paper's claims, each once, with its numbers; an id links to the figure or "
        "table on its page that shows them, the page name to the page."
    )
    return (
        f'<table class="lpft-claims"><caption>{html.escape(caption)}</caption><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table>"
    )


def sensitivity_table(table):
    """Every gathered check with a book tolerance: the tolerance, the status, and the nominal status at half
    and at double it (`Claim.sensitivity`)."""
    import pandas as pd

    rows = table[(table.get("tolerance_source") == "book")] if "tolerance_source" in table else table.iloc[:0]
    out = pd.DataFrame(
        {
            "id": rows["id"],
            "check": rows["statement"],
            "tolerance": rows["tolerance"],
            "status": rows["status"],
            "at half and at double": rows["sensitivity"].replace("", "–"),
        }
    )
    return out.set_index(["id", "check"])


def rule_markdown(table) -> str:
    """One paragraph for the claims page, computed from the records of `table`: the tests, the adjustment,
    how many tested records reach the level before and after it, and what the inconclusive ones could
    detect."""
    tested_ = table[table["p"].notna() & table["kind"].isin(TESTED_KINDS)] if "p" in table else table.iloc[:0]
    adjusted = tested_["p_adjusted"].notna().all() if len(tested_) else False
    nominal = int((tested_["p"] < LEVEL).sum())
    after = int((tested_["p_adjusted"] < LEVEL).sum()) if adjusted else None
    seeds = tested_["seeds"].value_counts()
    spread = "; ".join(f"{k} in {n}" for k, n in seeds.items())
    inconclusive = tested_[tested_["status"] == "inconclusive"]
    undecidable = int((inconclusive["decidable"] == False).sum()) if "decidable" in inconclusive else 0  # noqa: E712
    sources = table["tolerance_source"].value_counts() if "tolerance_source" in table else {}
    text = (
        f"**The rule.** Every comparison is {RULE}. This build tested {len(tested_)} records (values per "
        f"side: {spread or 'none'}); {nominal} reach p < {LEVEL:.0%} on their own"
    )
    text += (
        f", and {after} after the Benjamini–Hochberg adjustment over all of them, which decides every status."
        if adjusted
        else "; the book-wide adjustment was not applied (the page was not executed by the build)."
    )
    text += (
        f" Of the {len(inconclusive)} inconclusive comparisons, {undecidable} could not have detected the "
        "paper's own effect at 80 % power (not decidable at this scale)."
    )
    text += (
        f" Tolerances: {int(sources.get('paper', 0))} from the paper, {int(sources.get('book', 0))} the "
        "book's own (each shown at half and double in its record). Identities and vacuous checks (that "
        "cannot inform at this scale, by a bound computed before any number is read) are not tested."
    )
    return text


def verdict_markdown(claims: list[Claim], checklist: dict[str, str]) -> str:
    """A page's verdict computed from its own claim records, one sentence per claim id (in page order):
    how many of its checks hold, do not hold or are inconclusive, naming those that do not hold.
    Identities and vacuous checks are summarised apart."""
    paper_claims = [c for c in claims if c.kind == "claim"]
    sentences = []
    for claim_id in dict.fromkeys(c.id for c in paper_claims):
        checks = [c for c in paper_claims if c.id == claim_id]
        counts = {s: sum(c.status == s for c in checks) for s in STATUSES}
        parts = [f"{n} {s}" for s, n in counts.items() if n]
        against = [c.statement for c in checks if c.status == "does not hold"]
        text = f"**{claim_id}** ({checklist.get(claim_id, claim_id)}): of {len(checks)} checks, {', '.join(parts)}"
        if against:
            text += "; not holding: " + "; ".join(against)
        sentences.append(text + ".")
    for c in claims:
        if c.kind == "hypothesis":
            sentences.append(f"Hypothesis **{c.id}** ({c.statement}): {c.status} ({c.why}).")
    vacuous = [c for c in claims if c.kind == "vacuous"]
    if vacuous:
        sentences.append(f"Vacuous at this scale (not counted): {'; '.join(c.statement for c in vacuous)}.")
    identities = [c for c in claims if c.kind == "identity"]
    if identities:
        broken = [c.statement for c in identities if c.status != "holds"]
        sentences.append(
            f"Identities (tests of the code, not of the paper): {len(identities) - len(broken)} of "
            f"{len(identities)} hold" + (f"; failing: {'; '.join(broken)}" if broken else "") + "."
        )
    adjusted = any(c.p_adjusted is not None for c in claims)
    head = (
        "At this build's scale (the parameters above), after the book-wide adjustment, this page's checks give:"
        if adjusted
        else "At the nominal level (this page was not adjusted with the rest of the book), its checks give:"
    )
    return head + "\n\n" + "\n".join(f"- {s}" for s in sentences)


def _verdict_output(claims: list[Claim], checklist: dict[str, str]) -> dict:
    return {"text/markdown": verdict_markdown(claims, checklist), VERDICT_MIME: {"checks": len(claims)}}


def show_verdict(claims: list[Claim], checklist: dict[str, str]) -> None:
    """Display `verdict_markdown` as the page's verdict (rewritten by the build after the adjustment)."""
    from IPython.display import display

    display(_verdict_output(claims, checklist), raw=True)
