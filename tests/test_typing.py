"""The public API carries type hints and the package ships the PEP 561 marker."""

import inspect
import pathlib
import typing

import pytest

import fwtheory
import fwtheory.train


def _public_functions():
    out = [(name, getattr(fwtheory, name)) for name in sorted(fwtheory._LAZY)]
    out += [("train.train", fwtheory.train.train), ("train.init_params", fwtheory.train.init_params)]
    return [(name, obj) for name, obj in out if inspect.isfunction(obj)]


def test_py_typed_ships():
    assert (pathlib.Path(fwtheory.__file__).parent / "py.typed").is_file()


def test_some_public_functions_found():
    assert len(_public_functions()) >= 25


@pytest.mark.parametrize("name, func", _public_functions(), ids=[n for n, _ in _public_functions()])
def test_public_function_fully_annotated(name, func):
    params = inspect.signature(func).parameters
    annotations = func.__annotations__
    missing = [p for p in params if p not in annotations]
    assert not missing, f"{name}: parameters without annotations: {missing}"
    assert "return" in annotations, f"{name}: no return annotation"


@pytest.mark.parametrize("name, func", _public_functions(), ids=[n for n, _ in _public_functions()])
def test_annotations_resolve_under_type_checking(name, func, monkeypatch):
    """Every annotation names something that exists: evaluated with the module's
    globals plus its TYPE_CHECKING-only imports (typing.get_type_hints)."""
    module = inspect.getmodule(func)
    src = inspect.getsource(module)
    ns = dict(vars(module))
    block = src.split("if TYPE_CHECKING:\n", 1)
    if len(block) == 2:
        lines = []
        for line in block[1].splitlines():
            if not line.startswith("    "):
                break
            lines.append(line[4:])
        pkg = module.__name__ if module.__file__.endswith("__init__.py") else module.__name__.rpartition(".")[0]
        code = "\n".join(lines)
        exec(compile(code, f"<TYPE_CHECKING of {module.__name__}>", "exec"), {"__package__": pkg,
                                                                           "__name__": module.__name__}, ns)
    hints = typing.get_type_hints(func, globalns=ns)
    assert "return" in hints
