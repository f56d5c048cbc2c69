"""The public surface is whole: every subpackage is introduced, every public name is in the API page,
and the benchmark scripts use nothing else."""

import ast
import re
from importlib import import_module
from pathlib import Path

import pytest

import sklearn_lt

ROOT = Path(__file__).resolve().parents[1]
SUBPACKAGES = sorted(p.parent.name for p in (ROOT / "sklearn_lt").glob("*/__init__.py"))
BENCHMARK_SCRIPTS = sorted((ROOT / "benchmarks").rglob("*.py"))

# (script name, private module) pairs allowed to stay; none today
KNOWN_PRIVATE_IMPORTS = set()


def _private_imports(source):
    """Names of the ``sklearn_lt`` modules with a ``_``-prefixed part that ``source`` imports."""
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            # ``from sklearn_lt.torch import _net`` imports a private module as a name
            modules = [node.module] + [f"{node.module}.{a.name}" for a in node.names if a.name.startswith("_")]
        else:
            continue
        for module in modules:
            parts = module.split(".")
            if parts[0] == "sklearn_lt" and any(p.startswith("_") for p in parts[1:]):
                found.add(module)
    return found


def _import_lines(source):
    """The same, read line by line: also sees code held in strings (run in a child interpreter)."""
    pattern = r"^\s*(?:from|import)\s+(sklearn_lt(?:\.\w+)*)(?:\s+import\s+([\w, ]+))?"
    found = set()
    for module, names in re.findall(pattern, source, flags=re.MULTILINE):
        if any(p.startswith("_") for p in module.split(".")[1:]):
            found.add(module)
        found.update(f"{module}.{n.strip()}" for n in names.split(",") if n.strip().startswith("_"))
    return found


def test_private_import_detection():
    source = (
        "import sklearn_lt.torch._net\n"
        "from sklearn_lt.torch._data import as_device_tensor\n"
        "from sklearn_lt.torch import _net, ArrayDataset\n"
        "from sklearn_lt.torch import train_module\n"
        "from . import _common\n"
        "CHILD = '''\nfrom sklearn_lt.flows._dlsa import ClassPairSampler\n'''\n"
    )
    assert _private_imports(source) == {"sklearn_lt.torch._net", "sklearn_lt.torch._data"}
    assert _import_lines(source) == {"sklearn_lt.torch._net", "sklearn_lt.torch._data", "sklearn_lt.flows._dlsa"}


@pytest.mark.parametrize("path", BENCHMARK_SCRIPTS, ids=lambda p: str(p.relative_to(ROOT / "benchmarks")))
def test_benchmark_scripts_use_only_the_public_api(path):
    source = path.read_text()
    private = _private_imports(source) | _import_lines(source)
    private -= {module for name, module in KNOWN_PRIVATE_IMPORTS if name == path.name}
    assert not private, f"{path.name} imports private modules {sorted(private)}: use the public API"


def test_package_docstring_introduces_every_subpackage():
    missing = [name for name in SUBPACKAGES if f":mod:`sklearn_lt.{name}`" not in sklearn_lt.__doc__]
    assert not missing, f"sklearn_lt/__init__.py docstring does not list {missing}"


def test_api_page_lists_every_public_name():
    api = (ROOT / "doc" / "api.rst").read_text()
    listed = set(re.findall(r"^\s+(\w+\.\w+)\s*$", api, flags=re.MULTILINE))
    missing = [
        f"{package}.{name}"
        for package in SUBPACKAGES
        for name in import_module(f"sklearn_lt.{package}").__all__
        if f"{package}.{name}" not in listed
    ]
    assert not missing, f"public names missing from doc/api.rst: {missing}"
