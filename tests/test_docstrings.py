"""Every public estimator's numpydoc docstring documents exactly its constructor parameters, in order."""

import inspect

import pytest
from numpydoc.docscrape import ClassDoc

from sklearn_lt.utils import all_estimators


def _documented_parameters(cls):
    # numpydoc lets parameters of the same type share an entry: "a, b : float"
    return [name.strip() for entry in ClassDoc(cls)["Parameters"] for name in entry.name.split(",")]


def _constructor_parameters(cls):
    return [name for name in inspect.signature(cls.__init__).parameters if name != "self"]


@pytest.mark.parametrize("name, cls", all_estimators(), ids=[name for name, _ in all_estimators()])
def test_docstring_lists_exactly_the_constructor_parameters(name, cls):
    documented = _documented_parameters(cls)
    expected = _constructor_parameters(cls)
    missing = [p for p in expected if p not in documented]
    extra = [p for p in documented if p not in expected]
    assert not missing, f"{name}: parameters not documented: {missing}"
    assert not extra, f"{name}: documented but not parameters: {extra}"
    assert documented == expected, f"{name}: documented in the order {documented}, signature order {expected}"


def test_documented_parameters_reads_shared_entries():
    class Example:
        """An example.

        Parameters
        ----------
        a, b : float
            Two numbers.
        c : int
            A third.
        """

        def __init__(self, a, b, c):
            pass

    assert _documented_parameters(Example) == ["a", "b", "c"] == _constructor_parameters(Example)
