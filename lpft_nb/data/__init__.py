"""Data layer: the tasks a run trains on, the pinned files behind them, and the commands that fetch,
rebuild and check the data folder.

- `tasks`: loaders for SuperGLUE CB/RTE and the BOSS sentiment sets (splits, caps, fingerprints)
- `files`: the manifest of every file, pinned by sha256
- `download`: `data download` (official sources or a mirror) and the book's data step
- `boss`: `data build-boss`, BOSS's own preparation carried over step by step
- `check`: `data check`, one table of rows, classes and hashes
"""
