"""Sphinx configuration of the sklearn_lt documentation (built with warnings as errors in the tests)."""

import sklearn_lt

project = "sklearn_lt"
author = "sklearn_lt developers"
copyright = "2026, sklearn_lt developers"
release = version = sklearn_lt.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.intersphinx",
    "sphinx.ext.mathjax",
    "numpydoc",
]
autosummary_generate = True
autodoc_default_options = {}
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
# no network: intersphinx inventories are not fetched; references to other projects stay plain text
intersphinx_mapping = {}
templates_path = ["_templates"]
exclude_patterns = ["_build"]
html_theme = "pydata_sphinx_theme"
html_theme_options = {"navigation_with_keys": False}
html_static_path = []
nitpicky = False
suppress_warnings = ["config.cache"]
