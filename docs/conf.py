"""Sphinx configuration for the hubext documentation."""

import hubext

project = "hubext"
copyright = "2026, hubext contributors"
author = "hubext contributors"
version = release = hubext.__version__

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "autodoc_traits",
]
myst_enable_extensions = ["colon_fence", "deflist"]
myst_heading_anchors = 3
source_suffix = {".md": "markdown", ".rst": "restructuredtext"}
root_doc = "index"
exclude_patterns = ["_build"]

autodoc_member_order = "bysource"
# The reference documents our own traits; upstream ones link to upstream docs.
autodoc_default_options = {"members": False}

html_theme = "pydata_sphinx_theme"
html_title = "hubext"
html_theme_options = {"navigation_with_keys": False}


def _skip_upstream_traits(app, what, name, obj, skip, options):
    """Document only traits that hubext defines (or redefines).

    autodoc-traits lists every configurable trait, inherited ones included;
    JupyterHub's and OAuthenticator's own traits are documented upstream.
    """
    defined_in = getattr(getattr(obj, "this_class", None), "__module__", None)
    if defined_in is not None and not defined_in.startswith("hubext"):
        return True
    return skip


def setup(app):
    app.connect("autodoc-skip-member", _skip_upstream_traits)
