"""bf16 against fp32 by a numerical criterion: the same runs trained in both precisions, their per-run
metrics compared pair by pair.

``python -m lpft_nb bench --precision-runs`` trains (or loads from the cache) `RUNS` of the `default`
profile in fp32 and in bf16 and records each run's metrics (`METRICS`) in `RECORD`; the reproduce page
reads the record. The rule (`numerics_table`): for every metric, the per-run difference bf16 − fp32 (paired
by method and seed) must be equivalent to zero within `SPREAD_FRACTION` of the metric's seed spread (the
standard deviation over seeds within a method, pooled, in fp32) by a TOST at the book's level. A change
smaller than that fraction of what another seed does cannot move a verdict that the seeds allow.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from .report import stats

RECORD = Path(__file__).resolve().parent.parent / "book" / "measured" / "bf16-runs.json"
RUNS = {"dataset": "cb", "methods": ("ft", "lp_ft"), "seeds": (1, 2, 3)}
METRICS = {
    "test accuracy (%)": lambda r, fs, cal: 100 * r.metrics["test"]["accuracy"],
    "Diff(F) after the last step": lambda r, fs, cal: fs["Diff_last"],
    "head norm after training": lambda r, fs, cal: r.metrics["head_norm_final"],
    "ECE (%)": lambda r, fs, cal: 100 * cal["ece"],
}
SPREAD_FRACTION = 0.5  # the book's: half the seed spread
MIN_SPEEDUP = 1.4  # the FT step must be this many times faster in bf16 (the book's)
STEP = "FT train step, batch 8, length 128 (s)"


def record_precision_runs(profile: str = "default", path: Path = RECORD) -> dict:
    """Train or load `RUNS` under `profile`'s shared settings in fp32 and bf16 and write their metrics."""
    from .analysis.calibration import run_calibration
    from .analysis.features import feature_stats
    from .book.params import load_shared
    from .config import RunConfig
    from .device import environment, resolve_device
    from .runs.run import get_run

    settings = {
        k: v
        for k, v in load_shared(profile)[1].items()
        if k in RunConfig.model_fields and k not in ("dataset", "method", "seed", "precision")
    }
    rows = []
    for method in RUNS["methods"]:
        for seed in RUNS["seeds"]:
            row = {"method": method, "seed": seed}
            for precision in ("fp32", "bf16"):
                cfg = RunConfig.from_dict(
                    {
                        **settings,
                        "dataset": RUNS["dataset"],
                        "method": method,
                        "seed": seed,
                        "precision": precision,
                    }
                )
                run = get_run(cfg, progress=False)
                fs, cal = feature_stats(run), run_calibration(run)
                row[precision] = {name: float(f(run, fs, cal)) for name, f in METRICS.items()}
            rows.append(row)
    record = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": environment(resolve_device("auto")),
        "profile": profile,
        "runs": rows,
    }
    path.write_text(json.dumps(record, indent=1))
    return record


def numerics_table(record: dict, fraction: float = SPREAD_FRACTION):
    """Per metric: the mean per-run difference bf16 − fp32, the margin (`fraction` of the pooled seed sd
    in fp32), TOST's p and whether bf16 is equivalent."""
    import pandas as pd

    runs = record["runs"]
    rows = []
    for name in METRICS:
        fp32 = np.array([r["fp32"][name] for r in runs])
        bf16 = np.array([r["bf16"][name] for r in runs])
        methods = [r["method"] for r in runs]
        within = [fp32[[m == x for x in methods]] for m in dict.fromkeys(methods)]
        pooled_sd = float(np.sqrt(np.mean([w.var(ddof=1) for w in within if len(w) > 1])))
        margin = fraction * pooled_sd
        test = stats.equivalent(stats.difference(stats.Sample(bf16), stats.Sample(fp32)), margin)
        rows.append(
            {
                "metric": name,
                "bf16 − fp32 (mean over runs)": round(float((bf16 - fp32).mean()), 4),
                "largest |bf16 − fp32|": round(float(np.abs(bf16 - fp32).max()), 4),
                "seed sd (fp32, pooled)": round(pooled_sd, 4),
                "margin": round(margin, 4),
                "TOST p": round(test.p, 4),
                "equivalent": bool(test.side == "holds" and test.p < stats.LEVEL),
            }
        )
    return pd.DataFrame(rows).set_index("metric")


def bf16_decision(speed_record: dict, runs_record: dict) -> dict:
    """The rule for the `default` profile's precision: bf16 only if the FT step is at least `MIN_SPEEDUP`
    times faster (the smaller speed-up over the recorded bench pairs) and every metric of `numerics_table`
    is equivalent. Returns the speed table, the numerics table, the step's speed-up and the precision."""
    from .report.tables import precision_table

    speed = precision_table(speed_record)
    numerics = numerics_table(runs_record)
    step = float(speed.loc[STEP, "bf16 speed-up"])
    adopt = step >= MIN_SPEEDUP and bool(numerics["equivalent"].all())
    return {"speed": speed, "numerics": numerics, "step": step, "precision": "bf16" if adopt else "fp32"}
