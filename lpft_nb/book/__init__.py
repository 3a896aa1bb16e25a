"""Book layer: building the Jupyter Book from the pages.

- `build`: Jupytext → papermill (profile parameters) → Jupyter Book, and `fork`
- `params`: finding pages and checking a profile's parameter files before a page runs
- `html_check`: every built page opened in headless Chromium
"""
