"""Analysis layer: what the paper measures, computed from runs and models.

- `features`: cosine similarity, feature change, Fisher's discriminant ratio, t-SNE
- `calibration`: ECE / MCE, temperature and vector scaling, bootstrap intervals
- `span`: Corollary 4.3 on a linear model
- `ntk`: the exact NTK split into its pre-train (P) and FT-effective (F) parts (Prop. 4.1), in torch
- `kernel_parts`: what an NTK computation takes and gives (its options, `KernelParts`), without torch
- `kernel_stats`: ranks, spectra, block norms, the FT ratio and kernel regression of computed kernels
- `kernels`: kernels per dataset and setting at the start of the FT stage, cached
- `linearization`: eq. (1) checked with one real gradient step
- `lora`: Prop. 4.4, LoRA's kernel as a scaled copy of FT's
- `lp_causes`: why LP's head grows (anisotropy and sample-size sweeps, the regularisation path)
- `run_memo`: analyses memoised beside a run or in the cache

Torch, transformers and scikit-learn are imported inside the functions that compute; reading computed
results back (a warm rebuild) imports none of them.
"""
