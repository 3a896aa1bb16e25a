"""Claim checks: computed from measured numbers, shown on the page, recorded for the `claims` page.

Every check returns a `Claim` with a status computed from the numbers: ``holds``, ``does not hold``, or
``inconclusive``. Comparisons use one rule (`RULE`, `LEVEL`): Welch's t over seeds, two-sided at 5 %, with
each side's per-example standard error (the binomial error of an accuracy, a bootstrap error) added as
known variance; a side with one value and no per-example error gives ``inconclusive`` ("one seed"). `show_claims` renders a table and embeds the records as
JSON under the MIME type `CLAIMS_MIME`, so an executed notebook carries its checks in machine-readable form.
"""

from __future__ import annotations

import html
import json
from dataclasses import asdict, dataclass

import numpy as np
from numpy.typing import ArrayLike

from .format import fmt

CLAIMS_MIME = "application/vnd.lpft.claims+json"
STATUSES = ("holds", "does not hold", "inconclusive", "not run")
# A `claim` is the paper's statement and can fail; an `identity` holds by construction (a test of the code);
# a `hypothesis` is this book's own explanation, tested on its pages. Only claims count as the paper's.
KINDS = ("claim", "identity", "hypothesis")


@dataclass
class Claim:
    """One check: claim id (`paper.CHECKLIST`), page, statement, paper value, our value, status, reason;
    `evidence`: the HTML id of the figure or table on its page that shows the numbers ("" when none);
    `kind`: "claim" or "identity" (`KINDS`)."""

    id: str
    page: str
    statement: str
    paper: str
    ours: str
    status: str
    why: str = ""
    evidence: str = ""
    kind: str = "claim"
    rule: str = ""  # the decision rule, in words (`RULE` for comparisons)
    level: float | None = None  # its level: how often it is decisive when there is no difference
    seeds: str = ""  # values per side, e.g. "3 vs 3"
    seeds_needed: int | None = None  # inconclusive comparisons: seeds per side that would decide it

    def __post_init__(self):
        if self.status not in STATUSES:
            raise ValueError(f"status must be one of {STATUSES}, got {self.status!r}")
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {self.kind!r}")


LEVEL = 0.05
RULE = (
    "Welch's t-test over seeds, two-sided at level 5 % (a verdict in either direction when there is no "
    "difference at most 5 % of the time), each side's per-example standard error added as known "
    "variance (against a fixed threshold: the one-sample t-test); a side with one value and no "
    "per-example error is inconclusive"
)


def _welch(ma, va, ka, se_a, mb, vb, kb, se_b, factor) -> tuple[float, float]:
    """(standard error, degrees of freedom) of mean(a) − factor·mean(b): per side the seed variance of
    the mean (va/ka, ka − 1 degrees of freedom) plus the squared per-example error (known: infinite
    degrees of freedom), Welch–Satterthwaite over the seed parts."""
    seed_a, seed_b = va / ka, factor**2 * vb / kb
    total = seed_a + se_a**2 + seed_b + factor**2 * se_b**2
    den = (seed_a**2 / (ka - 1) if ka > 1 else 0.0) + (seed_b**2 / (kb - 1) if kb > 1 else 0.0)
    return float(np.sqrt(total)), float(total**2 / den) if den > 0 else float("inf")


def _critical(df: float) -> float:
    from scipy.stats import norm, t

    return float(norm.ppf(1 - LEVEL / 2) if np.isinf(df) else t.ppf(1 - LEVEL / 2, df))


def seeds_needed(margin, va, vb, se_a, se_b, factor, limit: int = 1000) -> int | None:
    """The seeds per side with which `margin` would be decisive under `RULE`, if the per-seed variances
    stay `va`, `vb`; None when no number up to `limit` would (the per-example error alone is too large)."""

    def decisive(k: int) -> bool:
        se, df = _welch(0, va, k, se_a, 0, vb, k, se_b, factor)
        return abs(margin) > _critical(df) * se

    if margin == 0 or not decisive(limit):
        return None
    lo, hi = 1, limit  # decisive(hi); not decisive(lo) or lo = 1 (more seeds only ever help)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if decisive(mid) else (mid, hi)
    return hi


def compare(
    claim_id: str,
    page: str,
    statement: str,
    paper: str,
    a: ArrayLike,
    b: ArrayLike,
    *,
    factor: float = 1.0,
    a_name: str = "A",
    b_name: str = "B",
    se_a: float = 0.0,
    se_b: float = 0.0,
) -> Claim:
    """Check mean(a) > factor · mean(b), where a and b are per-seed values, under `RULE`.

    `se_a`, `se_b`: each side's per-example standard error (in the units of a and b), e.g. the binomial
    error of an accuracy on the test set, which the seed spread does not hold when every seed is scored
    on the same test examples.
    """
    a = np.atleast_1d(np.asarray(a, dtype=float))
    b = np.atleast_1d(np.asarray(b, dtype=float))
    ma, mb = float(a.mean()), float(b.mean())
    va = float(a.var(ddof=1)) if len(a) > 1 else 0.0
    vb = float(b.var(ddof=1)) if len(b) > 1 else 0.0
    margin = ma - factor * mb
    target = f"{factor:g} × {b_name}" if factor != 1 else b_name
    ours = f"{a_name} = {fmt(a)}; {b_name} = {fmt(b)}"
    record = {"rule": RULE, "level": LEVEL, "seeds": f"{len(a)} vs {len(b)}"}
    lonely = [n for n, v, se in ((a_name, a, se_a), (b_name, b, se_b)) if len(v) == 1 and se == 0]
    if lonely:
        why = f"one seed: one value of {' and '.join(lonely)} and no per-example error, so no noise estimate"
        return Claim(claim_id, page, statement, paper, ours, "inconclusive", why, **record)
    se, df = _welch(ma, va, len(a), se_a, mb, vb, len(b), se_b, factor)
    status, noise, needed = _decide(margin, se, df, va, vb, se_a, se_b, factor)
    if status == "inconclusive":
        record["seeds_needed"] = needed
        why = f"{a_name} − {target} = {margin:.3g} is within the noise ({noise}); {_more(needed)}"
    elif se == 0 and margin == 0:
        why = f"{a_name} equals {target} in every seed"
    else:
        why = f"{a_name} {'exceeds' if margin > 0 else 'is below'} {target} by {abs(margin):.3g} ({noise})"
    return Claim(claim_id, page, statement, paper, ours, status, why, **record)


def _decide(margin, se, df, va, vb, se_a, se_b, factor) -> tuple[str, str, int | None]:
    """(status, the noise in words, seeds per side needed when inconclusive) of a `margin` (> 0: the claim's
    direction) with standard error `se` on `df` degrees of freedom, under `RULE`."""
    noise = f"standard error {se:.2g}" + ("" if np.isinf(df) else f", {df:.1f} degrees of freedom")
    if se == 0 and margin == 0:
        return "inconclusive", noise, None
    if se == 0 or abs(margin) > _critical(df) * se:
        return ("holds" if margin > 0 else "does not hold"), noise, None
    return "inconclusive", noise, seeds_needed(margin, va, vb, se_a, se_b, factor)


def _more(needed: int | None) -> str:
    return (
        f"about {needed} seeds per side would decide it" if needed else "no number of seeds would decide it"
    )


def exceeds(
    claim_id: str,
    page: str,
    statement: str,
    paper: str,
    values: ArrayLike,
    threshold: float,
    *,
    name: str = "value",
    below: bool = False,
) -> Claim:
    """Check mean(values) > threshold (with `below`: < threshold), where `values` are per-seed values and the
    threshold is exact, under `RULE` in its one-sample form (t over seeds, k − 1 degrees of freedom). One
    value is inconclusive ("one seed")."""
    v = np.atleast_1d(np.asarray(values, dtype=float))
    m, var = float(v.mean()), float(v.var(ddof=1)) if len(v) > 1 else 0.0
    margin = threshold - m if below else m - threshold
    ours = f"{name} = {fmt(v)}; threshold {threshold:.3g}"
    record = {"rule": RULE, "level": LEVEL, "seeds": str(len(v))}
    if len(v) == 1:
        why = f"one seed: one value of {name}, so no noise estimate"
        return Claim(claim_id, page, statement, paper, ours, "inconclusive", why, **record)
    se, df = _welch(m, var, len(v), 0.0, threshold, 0.0, 1, 0.0, 1.0)
    status, noise, needed = _decide(margin, se, df, var, 0.0, 0.0, 0.0, 1.0)
    if status == "inconclusive":
        record["seeds_needed"] = needed
        why = f"{name} − {threshold:.3g} = {m - threshold:.3g} is within the noise ({noise}); {_more(needed)}"
    else:
        side = "exceeds" if m > threshold else "is below"
        why = f"{name} {side} the threshold {threshold:.3g} by {abs(m - threshold):.3g} ({noise})"
    return Claim(claim_id, page, statement, paper, ours, status, why, **record)


def within_factor(
    claim_id: str,
    page: str,
    statement: str,
    paper: str,
    values: ArrayLike,
    reference: float,
    factor: float,
    name: str = "value",
) -> Claim:
    """Check reference/factor ≤ every per-seed value ≤ factor·reference (one value: inconclusive)."""
    arr = np.atleast_1d(np.asarray(values, dtype=float))
    lo, hi = reference / factor, reference * factor
    ok = bool(np.all((arr >= lo) & (arr <= hi)))
    ours = f"{name} = {fmt(arr)}; reference {reference:.3g}"
    why = (
        f"all values within [{lo:.3g}, {hi:.3g}]"
        if ok
        else f"values {arr.min():.3g}…{arr.max():.3g} leave [{lo:.3g}, {hi:.3g}]"
    )
    rule = f"every seed's value within a factor {factor:g} of the reference; one seed is inconclusive"
    status = "holds" if ok else "does not hold"
    if len(arr) == 1:
        status, why = "inconclusive", f"one seed: {why}, but one value has no noise estimate"
    return Claim(claim_id, page, statement, paper, ours, status, why, rule=rule, seeds=str(len(arr)))


def not_run(claim_id: str, page: str, statement: str, paper: str, why: str) -> Claim:
    return Claim(claim_id, page, statement, paper, "–", "not run", why)


_COLOURS = {"holds": "#1a7f37", "does not hold": "#cf222e", "inconclusive": "#9a6700", "not run": "#57606a"}


def _id_cell(claim_id: str, target: str) -> str:
    """The claim id, linked to `target` (a URL or "#anchor") when there is one."""
    return f'<a href="{html.escape(target)}">{html.escape(claim_id)}</a>' if target else html.escape(claim_id)


def claims_html(claims: list[Claim]) -> str:
    rows = []
    for c in claims:
        colour = _COLOURS[c.status]
        rows.append(
            f"<tr><td>{_id_cell(c.id, '#' + c.evidence if c.evidence else '')}</td>"
            + "".join(f"<td>{html.escape(x)}</td>" for x in (c.statement, c.paper, c.ours))
            + f'<td style="color:{colour};font-weight:bold">{c.status}</td><td>{html.escape(c.why)}</td></tr>'
        )
    head = "".join(f"<th>{h}</th>" for h in ("id", "claim", "paper", "ours", "status", "why"))
    caption = (
        "The checks of this page, computed from the numbers above; an id links to the figure or table "
        "that shows them."
    )
    return (
        f'<table class="lpft-claims"><caption>{caption}</caption><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table>"
    )


def show_claims(claims: list[Claim], evidence: dict[str, str] | None = None) -> None:
    """Display the claim table and embed the records (JSON) in the notebook output. `evidence` maps a claim
    id to the HTML id of the figure (its `name`) or table (`tables.anchor(label)`) on this page that shows
    its numbers; the id cells and the claims page link there."""
    from IPython.display import display

    for c in claims:
        c.evidence = c.evidence or (evidence or {}).get(c.id, "")
    records = [asdict(c) for c in claims]
    display(
        {"text/html": claims_html(claims), CLAIMS_MIME: records, "text/plain": json.dumps(records, indent=1)},
        raw=True,
    )


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


def gather_table(executed_dir, pages: list[str], checklist: dict[str, str], not_runnable: dict[str, str]):
    """All claim records of the executed `pages` (in order), each check once, plus a `not run` row for
    every checklist id that no page checked. Returns (DataFrame, counts by status of the claims).

    A check that a later page shows again (same id, statement and numbers) is kept once, from the first
    page, with the other pages in `also_on`. Identities (`kind` "identity") are kept but not counted."""
    from pathlib import Path

    import pandas as pd

    records, seen = [], {}
    for page in pages:
        path = Path(executed_dir) / f"{page}.ipynb"
        if not path.is_file():
            why = f"no executed notebook at {path}"
            missing = not_run("–", page, f"the page {page!r} was not executed in this build", "–", why)
            records.append(asdict(missing))
            continue
        for record in claims_from_notebook(path):
            record = {"evidence": "", "kind": "claim", **record, "also_on": ""}
            key = (record["id"], record["statement"], record["ours"], record["status"])
            if key in seen:
                first = seen[key]
                first["also_on"] = ", ".join(filter(None, [first["also_on"], record["page"]]))
                continue
            seen[key] = record
            records.append(record)
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


BF16_MIN_SPEEDUP = 1.4  # the FT step must be this many times faster in bf16 (and no claim status change)
BF16_STEP = "FT train step, batch 8, length 128 (s)"


def bf16_decision(speed_record: dict, claims_record: dict) -> dict:
    """The rule for the `default` profile's precision, from the recorded measurements (book/measured/):
    bf16 only if the FT step is at least `BF16_MIN_SPEEDUP` times faster (the smaller speed-up over the
    recorded pairs) and no claim status of the recorded builds changes. Returns the speed table, the status
    table, the step's speed-up, the number of changed statuses and the precision it decides."""
    from .tables import precision_table

    speed = precision_table(speed_record)
    changes = status_changes(claims_record["claims"]["fp32"], claims_record["claims"]["bf16"])
    step = float(speed.loc[BF16_STEP, "bf16 speed-up"])
    changed = int(changes["changed"].sum())
    adopt = step >= BF16_MIN_SPEEDUP and changed == 0
    return {
        "speed": speed,
        "changes": changes,
        "step": step,
        "changed": changed,
        "precision": "bf16" if adopt else "fp32",
    }


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
    for _, r in table.iterrows():
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
                for x in (r["statement"], r["paper"], r["ours"], r.get("seeds") or "–")
            )
            + f'<td style="color:{_COLOURS[r["status"]]};font-weight:bold">{r["status"]}</td>'
            f"<td>{html.escape(str(r['why']))}</td></tr>"
        )
    head = "".join(
        f"<th>{h}</th>" for h in ("id", "page", "check", "paper", "ours", "seeds", "status", "why")
    )
    caption = caption or (
        "Every check of the paper's claims, each once, with its numbers; an id links to the figure or "
        "table on its page that shows them, the page name to the page."
    )
    return (
        f'<table class="lpft-claims"><caption>{html.escape(caption)}</caption><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table>"
    )


def rule_markdown(table) -> str:
    """One paragraph for the claims page: the comparison rule and its level, and how many seeds the
    gathered comparisons of `table` rest on (computed from the records)."""
    rows = table[table["rule"] == RULE] if "rule" in table else table.iloc[:0]
    seeds = rows["seeds"].value_counts()
    spread = "; ".join(f"{k} seeds in {n} check{'s' * (n != 1)}" for k, n in seeds.items())
    lonely = int(rows["why"].str.startswith("one seed").sum())
    return (
        f"**The rule.** Every comparison uses one rule: {RULE}. Its level is {LEVEL:.0%}: where there is "
        f"no true difference, at most {LEVEL:.0%} of such checks give a verdict (the tests check this by "
        f"simulation). In this build the {len(rows)} comparisons rest on {spread or 'no values'}; "
        f"{lonely} of them are inconclusive because a side has one value and no per-example error. An "
        "inconclusive comparison says how many seeds per side, at the same spread, would decide it."
    )


VERDICT_MIME = "text/markdown"


def verdict_markdown(claims: list[Claim], checklist: dict[str, str]) -> str:
    """A page's verdict computed from its own claim records, one sentence per claim id (in page order):
    how many of its checks hold, do not hold or are inconclusive, naming those that do not hold.
    Identities are summarised apart, as tests of the code."""
    paper_claims = [c for c in claims if c.kind == "claim"]
    identities = [c for c in claims if c.kind == "identity"]
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
    if identities:
        broken = [c.statement for c in identities if c.status != "holds"]
        sentences.append(
            f"Identities (tests of the code, not of the paper): {len(identities) - len(broken)} of "
            f"{len(identities)} hold" + (f"; failing: {'; '.join(broken)}" if broken else "") + "."
        )
    head = "At this build's scale (the parameters above), this page's checks give:"
    return head + "\n\n" + "\n".join(f"- {s}" for s in sentences)


def show_verdict(claims: list[Claim], checklist: dict[str, str]) -> None:
    """Display `verdict_markdown` as the page's verdict (Markdown, rendered as prose)."""
    from IPython.display import Markdown, display

    display(Markdown(verdict_markdown(claims, checklist)))
