"""Sweep specifications: parsing, validation, expansion into tasks, task keys and seeds.

A sweep is a TOML file (or the same content as a Python dict)::

    verb = "simulate"            # or "predict", "compare"
    seed = 0                     # the sweep's seed (optional, default 0)
    name = "cw scan"             # optional label

    [fixed]                      # arguments with the CLI's names
    activation = "tanh"
    samples = 200

    [grid]                       # lists; one task per point of their product
    width = [8, 16]
    depth = [2, 3, 4]
    cw = [0.9, 1.0, 1.1, 1.2]

Argument names are those of ``fwtheory <verb> --help`` (``input-dim`` or
``input_dim``); values are converted to the CLI's types up front, so that
``cw = 1`` and ``cw = 1.0`` are the same task. Ranges (``cw > 0``...) are
checked when the task runs: a task with a bad value is recorded as failed and
the others run.

Task identity and seed. A task's arguments are put in canonical JSON (keys
sorted, values converted). Its *key* is a SHA-256 prefix of the verb, the
canonical arguments and the sweep seed (a results file is resumed by key); its
*seed* is ``SeedSequence([sweep_seed, sha256(canonical arguments)])`` reduced
to a 64-bit integer, so it depends only on the sweep seed and the task's own
arguments, never on its position in the grid, the order of completion or the
worker that ran it.
"""

__all__ = ["VERBS", "Task", "SweepSpec", "load_spec", "canonical_json", "task_key", "task_seed",
           "verb_arguments"]

import argparse
import functools
import hashlib
import itertools
import json
import math
import numbers
import os
from dataclasses import dataclass

from ..errors import ParameterError

VERBS = ("predict", "simulate", "compare")
TOP_LEVEL = ("verb", "seed", "name", "description", "fixed", "grid")
# CLI options that only shape the output of a single run (files, printing, exit codes)
_NOT_ARGUMENTS = {"json", "out", "plot", "check", "force", "quantities", "func", "command", "help"}


@functools.lru_cache(maxsize=None)
def verb_arguments(verb):
    """{dest: (action type, default, nargs, is_flag)} of ``fwtheory <verb>``'s arguments
    that a sweep may set (read from the verb's own argparse definition)."""
    from importlib import import_module

    parser = argparse.ArgumentParser(prog="fwtheory")
    sub = parser.add_subparsers()
    p = import_module(f"fwtheory.cli.{verb}").add_parser(sub)
    out = {}
    for action in p._actions:
        if action.dest in _NOT_ARGUMENTS or not action.option_strings:
            continue
        flag = isinstance(action, (argparse._StoreTrueAction, argparse._StoreFalseAction))
        out[action.dest] = (action.type, action.default, action.nargs, flag, tuple(action.choices or ()))
    return out


def _widths_value(name, value):
    if isinstance(value, str):
        parts = value.replace(",", " ").split()
    elif isinstance(value, (list, tuple)):
        parts = list(value)
    else:
        raise ParameterError(name, f"must be a list of integers, e.g. [32, 64], got {value!r}")
    return [_int(name, v) for v in parts]


def _int(name, value):
    if isinstance(value, bool):
        raise ParameterError(name, f"must be an integer, got {value!r}")
    if isinstance(value, str):
        try:
            value = int(value.strip())
        except ValueError:
            raise ParameterError(name, f"must be an integer, got {value!r}") from None
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real) and math.isfinite(value) and float(value).is_integer():
        return int(value)
    raise ParameterError(name, f"must be an integer, got {value!r}")


def _float(name, value):
    if isinstance(value, bool):
        raise ParameterError(name, f"must be a real number, got {value!r}")
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ParameterError(name, f"must be a real number, got {value!r}") from None


def _convert(verb, name, dest, value):
    """The value converted as the CLI would; raises ParameterError naming ``name``."""
    typ, _default, nargs, flag, choices = verb_arguments(verb)[dest]
    if dest == "widths":
        return None if value is None else _widths_value(name, value)
    if value is None:
        return None
    if flag:
        if not isinstance(value, bool):
            raise ParameterError(name, f"must be true or false, got {value!r}")
        return value
    if nargs not in (None, "?"):
        raise ParameterError(name, f"is not supported in a sweep (list-valued option), got {value!r}")
    if typ is int:
        value = _int(name, value)
    elif typ is float:
        value = _float(name, value)
    elif isinstance(value, (list, tuple, dict)):
        raise ParameterError(name, f"must be a single value, got {value!r}")
    else:
        value = str(value)
    if choices and value not in choices:
        raise ParameterError(name, f"must be one of {', '.join(map(str, choices))}, got {value!r}")
    return value


def canonical_json(obj):
    """Compact JSON with sorted keys: the stable text that keys and seeds are hashed from."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False)


def task_key(verb, args, sweep_seed):
    """16 hex digits identifying a task (verb, canonical arguments, sweep seed)."""
    text = canonical_json({"verb": verb, "args": args, "seed": int(sweep_seed)})
    return hashlib.sha256(text.encode("ascii")).hexdigest()[:16]


def task_seed(args, sweep_seed):
    """The task's seed: ``SeedSequence([sweep_seed, H])`` with H the SHA-256 of the
    canonical JSON of the arguments, as a 64-bit integer."""
    import numpy as np

    digest = int.from_bytes(hashlib.sha256(canonical_json(args).encode("ascii")).digest(), "big")
    words = np.random.SeedSequence([int(sweep_seed), digest]).generate_state(2, dtype=np.uint32)
    return (int(words[0]) << 32) | int(words[1])


@dataclass(frozen=True)
class Task:
    """One grid point: ``args`` holds the canonical (converted, explicitly given) arguments."""

    index: int
    verb: str
    args: dict
    key: str
    seed: int


@dataclass(frozen=True)
class SweepSpec:
    verb: str
    seed: int
    fixed: dict
    grid: dict
    name: str = None
    source: str = None

    @property
    def size(self):
        return math.prod(len(v) for v in self.grid.values()) if self.grid else 1

    def tasks(self):
        """The tasks in grid order (the first grid parameter varies slowest)."""
        names = list(self.grid)
        out = []
        for i, point in enumerate(itertools.product(*(self.grid[n] for n in names))):
            args = dict(self.fixed)
            args.update(zip(names, point))
            args = dict(sorted(args.items()))
            out.append(Task(i, self.verb, args, task_key(self.verb, args, self.seed), task_seed(args, self.seed)))
        return out

    def to_dict(self):
        d = {"verb": self.verb, "seed": self.seed, "fixed": dict(self.fixed), "grid": dict(self.grid)}
        if self.name:
            d["name"] = self.name
        return d


def _tomllib():
    try:
        import tomllib
    except ModuleNotFoundError:        # Python 3.10
        try:
            import tomli as tomllib
        except ModuleNotFoundError:
            raise ParameterError("spec", "reading a TOML sweep spec needs Python >= 3.11 or the "
                                         "'tomli' package (pip install tomli)") from None
    return tomllib


def _read_toml(path):
    tomllib = _tomllib()
    if "\n" in path:                   # TOML text rather than a file name
        try:
            return tomllib.loads(path)
        except tomllib.TOMLDecodeError as exc:
            raise ParameterError("spec", f"not valid TOML: {exc}") from None
    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise ParameterError("spec", f"no such file: {path}") from None
    except OSError as exc:
        raise ParameterError("spec", f"cannot read {path}: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ParameterError("spec", f"{path} is not valid TOML: {exc}") from None


def load_spec(spec, seed=None):
    """Parse and validate a sweep spec: a :class:`SweepSpec`, a dict, the path of a
    TOML file, or TOML text (a string with a newline). ``seed`` overrides the spec's seed. Raises ParameterError naming the
    first unknown verb, key or argument, or a value of the wrong type."""
    source = None
    if isinstance(spec, SweepSpec):
        return spec if seed is None else SweepSpec(spec.verb, _int("seed", seed), spec.fixed, spec.grid,
                                                   spec.name, spec.source)
    if isinstance(spec, (str, os.PathLike)):
        source = os.fspath(spec)
        spec = _read_toml(source)
        if "\n" in source:
            source = None
    if not isinstance(spec, dict):
        raise ParameterError("spec", f"must be a dict, a SweepSpec or a TOML file path, got {type(spec).__name__}")
    for key in spec:
        if key not in TOP_LEVEL:
            raise ParameterError(str(key), f"unknown sweep spec key (known: {', '.join(TOP_LEVEL)})")
    verb = spec.get("verb")
    if verb not in VERBS:
        raise ParameterError("verb", f"must be one of {', '.join(VERBS)}, got {verb!r}")
    sweep_seed = spec.get("seed", 0) if seed is None else seed
    sweep_seed = _int("seed", sweep_seed)
    if sweep_seed < 0:
        raise ParameterError("seed", f"must be an integer >= 0, got {sweep_seed}")
    fixed_in, grid_in = spec.get("fixed", {}) or {}, spec.get("grid", {}) or {}
    for label, table in (("fixed", fixed_in), ("grid", grid_in)):
        if not isinstance(table, dict):
            raise ParameterError(label, f"must be a table of arguments, got {table!r}")
    known = verb_arguments(verb)
    fixed, grid, seen = {}, {}, {}

    def dest_of(label, name):
        dest = str(name).replace("-", "_")
        if dest == "seed":
            raise ParameterError(f"{label}.{name}", "a task's seed is derived from the sweep's seed and the "
                                                    "task's arguments; set the sweep's seed at the top level "
                                                    "(seed = N)")
        if dest not in known:
            options = ", ".join(sorted(k.replace("_", "-") for k in known))
            raise ParameterError(f"{label}.{name}", f"unknown argument for {verb} (known: {options})")
        if dest in seen:
            raise ParameterError(f"{label}.{name}", f"given twice (also as {seen[dest]})")
        seen[dest] = f"{label}.{name}"
        return dest

    for name, value in fixed_in.items():
        dest = dest_of("fixed", name)
        fixed[dest] = _convert(verb, f"fixed.{name}", dest, value)
    for name, values in grid_in.items():
        dest = dest_of("grid", name)
        if not isinstance(values, (list, tuple)) or not values:
            raise ParameterError(f"grid.{name}", f"must be a non-empty list of values, got {values!r}")
        converted = [_convert(verb, f"grid.{name}", dest, v) for v in values]
        texts = [canonical_json(v) for v in converted]
        if len(set(texts)) != len(texts):
            dup = next(v for v, t in zip(values, texts) if texts.count(t) > 1)
            raise ParameterError(f"grid.{name}", f"lists the value {dup!r} twice")
        grid[dest] = converted
    name = spec.get("name")
    return SweepSpec(verb=verb, seed=sweep_seed, fixed=fixed, grid=grid,
                     name=None if name is None else str(name), source=source)
