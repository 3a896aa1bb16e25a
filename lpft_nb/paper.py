"""Numbers the paper reports (NeurIPS 2024 camera-ready: Tables 1–3 and 6–14, §4).

Only ever shown *beside* our measurements, never in their place.
"""

from __future__ import annotations

METHOD_LABELS = {
    "pretrained": "Pre-trained",
    "lp": "LP",
    "ft": "FT",
    "lora": "LoRA",
    "lp_ft": "LP-FT",
    "lp_lora": "LP-LoRA",
}

# Table 13: classifier weight norm ‖V‖_F after training ("pretrained" = the random init).
TABLE13_HEAD_NORM = {
    "cb": {"pretrained": 0.947, "ft": 0.951, "lora": 1.56, "lp": 33.5, "lp_ft": 33.5, "lp_lora": 33.5},
    "rte": {"pretrained": 0.795, "ft": 0.805, "lora": 1.45, "lp": 28.6, "lp_ft": 28.6, "lp_lora": 28.5},
    "amazon": {"pretrained": 0.951, "ft": 0.947, "lora": 1.67, "lp": 121.0, "lp_ft": 121.0, "lp_lora": 120.0},
    "sst2": {"pretrained": 0.795, "ft": 0.720, "lora": 1.96, "lp": 132.0, "lp_ft": 109.0, "lp_lora": 103.0},
}

# Table 1: CS(F), Diff(F), FDR(F), Norm(C) on CB and RTE (None = "–").
TABLE1 = {
    "cb": {
        "pretrained": {"CS": 0.997, "Diff": None, "FDR": 8.14e4, "Norm": 0.951},
        "lp": {"CS": 0.997, "Diff": None, "FDR": 8.14e4, "Norm": 24.8},
        "ft": {"CS": 0.336, "Diff": 22.1, "FDR": 7.39e8, "Norm": 0.960},
        "lora": {"CS": 0.499, "Diff": 19.2, "FDR": 8.91e6, "Norm": 1.43},
        "lp_ft": {"CS": 0.804, "Diff": 12.0, "FDR": 6.47e6, "Norm": 24.8},
        "lp_lora": {"CS": 0.837, "Diff": 9.08, "FDR": 2.10e6, "Norm": 24.9},
    },
    "rte": {
        "pretrained": {"CS": 0.996, "Diff": None, "FDR": 85.9, "Norm": 0.776},
        "lp": {"CS": 0.996, "Diff": None, "FDR": 85.9, "Norm": 31.0},
        "ft": {"CS": 0.260, "Diff": 21.6, "FDR": 1.42e4, "Norm": 0.784},
        "lora": {"CS": 0.759, "Diff": 10.6, "FDR": 2.97e3, "Norm": 1.21},
        "lp_ft": {"CS": 0.942, "Diff": 4.70, "FDR": 157.0, "Norm": 31.0},
        "lp_lora": {"CS": 0.924, "Diff": 4.63, "FDR": 20.6, "Norm": 31.0},
    },
}

# Table 12: feature change Diff(F) during the FT stage.
TABLE12_DIFF = {
    "cb": {"ft": 21.1, "lora": 20.7, "lp_ft": 11.5, "lp_lora": 7.85},
    "rte": {"ft": 21.2, "lora": 15.1, "lp_ft": 3.33, "lp_lora": 3.87},
    "sst2": {"ft": 23.1, "lora": 3.78, "lp_ft": 6.95, "lp_lora": 2.17},
    "amazon": {"ft": 19.8, "lora": 13.5, "lp_ft": 2.21, "lp_lora": 2.28},
    "dynasent": {"ft": 19.4, "lora": 8.02, "lp_ft": 2.47, "lp_lora": 2.59},
    "semeval": {"ft": 18.3, "lora": 6.97, "lp_ft": 1.99, "lp_lora": 2.14},
    "sst5": {"ft": 20.3, "lora": 9.08, "lp_ft": 1.79, "lp_lora": 1.89},
}

# Table 8 (CB, RTE, SST-2; the paper's SST-2 LoRA runs predict one class): test accuracy %, mean ± std over
# 5 seeds.
TABLE8_ACCURACY = {
    "cb": {
        "lp": (77.86, 4.24),
        "ft": (81.43, 3.91),
        "lp_ft": (84.64, 2.40),
        "lora": (77.50, 5.30),
        "lp_lora": (75.71, 2.04),
    },
    "rte": {
        "lp": (57.69, 1.10),
        "ft": (74.73, 3.04),
        "lp_ft": (76.75, 0.87),
        "lora": (72.85, 1.41),
        "lp_lora": (74.08, 2.57),
    },
    "sst2": {
        "lp": (86.31, 0.10),
        "ft": (92.41, 0.32),
        "lp_ft": (94.52, 0.26),
        "lora": (50.92, 0.00),
        "lp_lora": (94.22, 0.45),
    },
}

# Table 14 (CB, RTE, SST-2; RTE = Table 3): ECE / MCE in %, (without TS, with TS, improvement).
TABLE14_CALIBRATION = {
    "cb": {
        "ece": {
            "ft": (15.60, 14.64, 0.95),
            "lp_ft": (13.93, 13.13, 0.80),
            "lora": (12.89, 16.22, -3.34),
            "lp_lora": (14.78, 13.51, 1.27),
        },
        "mce": {
            "ft": (75.99, 69.99, 6.01),
            "lp_ft": (76.78, 70.28, 6.50),
            "lora": (52.58, 66.75, -14.16),
            "lp_lora": (68.16, 60.80, 7.36),
        },
    },
    "rte": {
        "ece": {
            "ft": (21.16, 5.13, 16.03),
            "lp_ft": (21.72, 5.48, 16.24),
            "lora": (11.92, 6.17, 5.76),
            "lp_lora": (18.14, 5.72, 12.42),
        },
        "mce": {
            "ft": (53.11, 25.87, 27.24),
            "lp_ft": (63.95, 13.94, 50.01),
            "lora": (25.04, 13.75, 11.29),
            "lp_lora": (40.46, 18.82, 21.63),
        },
    },
    "sst2": {
        "ece": {
            "ft": (4.61, 2.26, 2.35),
            "lp_ft": (5.67, 2.00, 3.66),
            "lora": (4.84, 2.71, 2.12),
            "lp_lora": (6.22, 2.53, 3.69),
        },
        "mce": {
            "ft": (49.22, 42.72, 6.50),
            "lp_ft": (74.91, 42.77, 32.13),
            "lora": (54.20, 36.58, 17.63),
            "lp_lora": (71.12, 32.47, 38.65),
        },
    },
}

# Tables 2 (CB) and 9 (RTE): kernel statistics. (rank, FN, per-logit acc train, acc test, FT ratio or None)
TABLE2_9_KERNELS = {
    "cb": {
        ("pretrained", "P"): (18, 51.0e3, 87.11, 79.17, None),
        ("ft", "F"): (608, 13.9e3, 84.74, 79.76, 0.1987),
        ("ft", "NTK"): (210, 64.9e3, 84.74, 79.76, None),
        ("lora", "F"): (500, 22.6, 86.22, 79.17, 0.0004),
        ("lora", "NTK"): (20, 51.0e3, 92.15, 84.52, None),
        ("lp_ft", "F"): (344, 7250e3, 100.00, 86.31, 1.0000),
        ("lp_ft", "NTK"): (344, 7280e3, 100.00, 86.31, None),
        ("lp_lora", "F"): (307, 15.1e3, 94.96, 85.71, 1.0137),
        ("lp_lora", "NTK"): (188, 62.6e3, 95.11, 85.71, None),
    },
    "rte": {
        ("pretrained", "P"): (28, 4.70e4, 66.40, 51.20, None),
        ("ft", "F"): (488, 1.29e4, 96.60, 53.40, 0.2148),
        ("ft", "NTK"): (191, 5.98e4, 97.60, 53.00, None),
        ("lora", "F"): (432, 2.51e1, 70.80, 54.60, 0.0005),
        ("lora", "NTK"): (30, 4.70e4, 59.60, 54.80, None),
        ("lp_ft", "F"): (250, 3.80e6, 100.00, 51.20, 0.9918),
        ("lp_ft", "NTK"): (251, 3.84e6, 100.00, 51.20, None),
        ("lp_lora", "F"): (243, 7.60e3, 84.80, 51.20, 0.1942),
        ("lp_lora", "NTK"): (103, 5.26e4, 88.00, 51.20, None),
    },
}

# Table 10 (BOSS, trained on Amazon): accuracy %, mean ± std over 5 seeds.
TABLE10_BOSS = {
    "lp": {
        "amazon": (83.04, 0.01),
        "dynasent": (42.69, 0.05),
        "semeval": (50.04, 0.01),
        "sst5": (56.81, 0.11),
    },
    "ft": {
        "amazon": (88.66, 1.62),
        "dynasent": (44.33, 1.11),
        "semeval": (52.20, 1.82),
        "sst5": (72.52, 1.28),
    },
    "lora": {
        "amazon": (86.05, 2.16),
        "dynasent": (46.70, 1.68),
        "semeval": (55.29, 2.93),
        "sst5": (72.88, 1.84),
    },
    "lp_ft": {
        "amazon": (88.89, 1.02),
        "dynasent": (45.41, 0.80),
        "semeval": (51.96, 2.72),
        "sst5": (73.78, 1.05),
    },
    "lp_lora": {
        "amazon": (88.17, 1.97),
        "dynasent": (43.37, 1.50),
        "semeval": (48.84, 3.20),
        "sst5": (72.31, 1.30),
    },
}

# Table 11 (BOSS): CS, Diff, FDR per set (Norm(C) for Amazon only; None = "–").
TABLE11_BOSS = {
    "amazon": {
        "pretrained": (0.996, None, 1.30, 0.951),
        "lp": (0.996, None, 1.30, 120.0),
        "ft": (0.691, 19.4, 3.74, 0.950),
        "lora": (0.848, 11.6, 3.38, 1.81),
        "lp_ft": (0.999, 2.27, 3.00, 120.0),
        "lp_lora": (0.999, 2.24, 3.01, 118.0),
    },
    "dynasent": {
        "pretrained": (0.996, None, 1.94, None),
        "lp": (0.996, None, 1.94, None),
        "ft": (0.652, 18.0, 2.03, None),
        "lora": (0.855, 7.53, 2.06, None),
        "lp_ft": (0.998, 2.54, 2.20, None),
        "lp_lora": (0.999, 2.56, 2.04, None),
    },
    "semeval": {
        "pretrained": (0.996, None, 1.24, None),
        "lp": (0.996, None, 1.24, None),
        "ft": (0.727, 16.8, 1.49, None),
        "lora": (0.885, 6.74, 1.44, None),
        "lp_ft": (0.997, 2.06, 1.45, None),
        "lp_lora": (0.999, 2.08, 1.19, None),
    },
    "sst5": {
        "pretrained": (0.998, None, 16.9, None),
        "lp": (0.998, None, 16.9, None),
        "ft": (0.604, 18.4, 22.6, None),
        "lora": (0.837, 8.72, 20.1, None),
        "lp_ft": (0.998, 1.86, 20.2, None),
        "lp_lora": (0.998, 1.85, 19.5, None),
    },
}

# The paper's claims that the book checks: claim id → the paper's statement (§4.2–§4.6, §5, Appendix).
CHECKLIST = {
    "M1": "LP increases the head norm a lot: ≫ the random init and ≫ the norm after FT",
    "M2": "After FT the head norm stays near its initial value; LoRA grows it slightly",
    "M3": "Features change less under LP-FT than FT (and LP-LoRA than LoRA)",
    "M4": "LP-FT keeps the pre-trained feature geometry: CS(F) stays high, FT lowers it",
    "M5": "FDR(F) after LP-FT is lower than after FT on CB and RTE (FT over-separates)",
    "M6": "A larger head norm at the start of FT reduces the feature change; LP-FT below FT at large norms",
    "K1": "P is diagonal and identical for FT and LP-FT; F depends on V0",
    "K2": "FT ratio ≈ 1 for LP-FT, ≈ 0.2 for FT, ≈ 5e-4 for LoRA",
    "K3": "FT-E of LP-FT has a far larger Frobenius norm than FT's",
    "K4": "Pre-train E has low rank; FT E high rank",
    "K5": "LoRA's FT-E is a scaled copy of FT's (Prop. 4.4): matching normalised spectra",
    "A1": "LP-FT ≥ FT in test accuracy on CB, RTE, SST-2, WiC, BoolQ",
    "A2": "BOSS: LP-FT best ID; beats FT on DynaSent and SST-5, not on SemEval",
    "A3": "PubMed 20k: FT, LP-FT and LoRA about equal; LP lower",
    "C1": "Before TS, LP-FT is worse calibrated than FT, most clearly in MCE",
    "C2": "TS improves LP-FT the most; after TS LP-FT is comparable to FT",
    "X1": "FDR on OOD data higher for LP-FT than FT (supported on DynaSent only); lower on ID Amazon",
    "Cor4.3": "Linear model: features of inputs orthogonal to the training span do not change",
}
# Why a checklist item cannot run in this book at all.
NOT_RUNNABLE = {
    "A3": "PubMed 20k RCT is not in the data folder",
}

# Mean pairwise cosine of RoBERTa-base <s> features on the test sets (Table 1, "Pre-trained" CS).
ROBERTA_FEATURE_COSINE = {"cb": 0.997, "rte": 0.996}

# Paper's setting of LP (LogisticRegressionCV) and the LP head norm range it reports (claim M1).
PAPER_LP_NORM_RANGE = {"cb": (24.8, 33.5), "rte": (28.6, 31.0), "sst2": (132.0, 132.0)}  # SST-2: Table 13
