"""Report layer: numbers as the book shows them, beside the paper's.

- `format`: mean ± sd over seeds
- `tables`: tables of a run grid and of kernels, functions ``f(study, …)``
- `plots`: the figures
- `style`: the palette and type sizes every figure shares
- `claims`: the `Claim` record, the comparison rules, display and gathering
- `claim_rules`: the claim checks of each page
"""
