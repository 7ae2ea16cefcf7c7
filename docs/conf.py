"""Sphinx configuration: the guides (MyST markdown) and the API reference,
built from the docstrings.

    python -m sphinx -W --keep-going -b html docs docs/_build/html
"""

import os
import sys

sys.path.insert(0, os.path.abspath(".."))

project = "ladam_jax"
author = "ladam_jax developers"
extensions = [
    "myst_parser",           # the guides are MyST markdown
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",   # Google-style Args / Returns / Examples
    "sphinx.ext.mathjax",
    "sphinx.ext.intersphinx",
]
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
myst_enable_extensions = ["dollarmath", "colon_fence"]
myst_heading_anchors = 3     # [text](#a-heading) links within and across pages
autodoc_typehints = "none"  # the signatures carry them; JAX's aliases are long
autodoc_member_order = "bysource"
napoleon_google_docstring = True
napoleon_numpy_docstring = False
intersphinx_mapping = {}
exclude_patterns = ["_build"]
html_theme = "sphinx_book_theme"
html_title = "ladam_jax"
html_theme_options = {
    "show_toc_level": 2,
    "home_page_in_toc": True,
}
