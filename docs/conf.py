# Sphinx configuration for django-crossdb-toolkit.
# Build locally: python -m pip install -r docs/requirements.txt && sphinx-build -W docs docs/_build

project = "django-crossdb-toolkit"
author = "django-crossdb-toolkit developers"
copyright = "2026, django-crossdb-toolkit developers"

extensions = ["myst_parser"]  # only to include CHANGELOG.md
source_suffix = {".rst": "restructuredtext"}
exclude_patterns = ["_build"]

html_theme = "furo"
html_title = "django-crossdb-toolkit"
