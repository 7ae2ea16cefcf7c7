"""Sphinx configuration: the API reference, built from the docstrings.

    python -m sphinx -W --keep-going -b html docs docs/_build/html
"""

import os
import sys

sys.path.insert(0, os.path.abspath(".."))

project = "ladam_jax"
author = "ladam_jax developers"
extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",   # Google-style Args / Returns / Examples
    "sphinx.ext.mathjax",
    "sphinx.ext.intersphinx",
]
autodoc_typehints = "none"  # the signatures carry them; JAX's aliases are long
autodoc_member_order = "bysource"
napoleon_google_docstring = True
napoleon_numpy_docstring = False
intersphinx_mapping = {}
exclude_patterns = ["_build", "SEMANTICS.md"]
html_theme = "alabaster"
