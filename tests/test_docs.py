"""The documentation builds without a warning, and every public name is documented."""

import inspect
import shutil
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parents[1] / "doc"
PUBLIC_MODULES = [
    "augmentation",
    "base",
    "datasets",
    "ensemble",
    "flows",
    "linear_model",
    "metrics",
    "neural_network",
    "prototypes",
    "torch",
    "utils",
]


def test_every_public_name_has_a_docstring_with_an_example():
    from importlib import import_module

    missing = []
    for module_name in PUBLIC_MODULES:
        module = import_module(f"sklearn_lt.{module_name}")
        for name in module.__all__:
            obj = getattr(module, name)
            if not (inspect.isclass(obj) or inspect.isfunction(obj)):
                continue
            doc = inspect.getdoc(obj) or ""
            if "Examples" not in doc or ">>>" not in doc:
                missing.append(f"{module_name}.{name}")
    assert not missing, f"public names without a doctested example: {missing}"


def test_sphinx_build_has_no_warnings(tmp_path):
    pytest.importorskip("sphinx")
    pytest.importorskip("numpydoc")
    pytest.importorskip("pydata_sphinx_theme")
    from sphinx.cmd.build import build_main

    source = tmp_path / "doc"
    shutil.copytree(DOC, source, ignore=shutil.ignore_patterns("_build", "generated"))
    # the benchmark page includes results from ../benchmarks
    shutil.copytree(DOC.parent / "benchmarks" / "results", tmp_path / "benchmarks" / "results")
    status = build_main(["-W", "--keep-going", "-q", "-b", "html", str(source), str(tmp_path / "html")])
    assert status == 0
