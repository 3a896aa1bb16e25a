"""Runs layer: one training run, the grid of runs a page needs, and the on-disk cache they share.

- `run`: one run end to end (`get_run`), cached as a folder keyed by settings, data, model and code
- `grid`: `Study`, datasets × methods × LP regularisations × head scales × seeds
- `cache`: `code_key` and `memoize`, the one memo scheme of the package
"""
