"""Generate the reference pages of the documentation from the code.

* ``api.md`` - every public object of the fwtheory modules (``__all__``), with
  its signature and docstring;
* ``cli.md`` - the help text of ``fwtheory`` and of every sub-command, rendered
  from the argparse parser :func:`fwtheory.cli.build_parser`;
* ``recursions.md`` - the single-input recursions as derived by
  :func:`fwtheory.derive` for both ensembles, with their first-layer values.

Used two ways:

* as an mkdocs hook (``hooks:`` in mkdocs.yml): ``on_files`` adds the three
  pages to the build as generated files, so a plain ``mkdocs build --strict``
  always documents the code it runs with (nothing is written to docs/);
* as a script, ``python docs/gen_reference.py [OUT_DIR]`` writes the three
  pages into OUT_DIR (default: ``site_reference``) for inspection.
"""

import argparse
import inspect
import io
import os
import pkgutil
import sys
import textwrap
from contextlib import contextmanager
from importlib import import_module

# documented first, in this order; other public modules follow alphabetically
MODULE_ORDER = [
    "fwtheory", "fwtheory.network", "fwtheory.activations", "fwtheory.quantities",
    "fwtheory.symbolic", "fwtheory.prediction", "fwtheory.exact", "fwtheory.asymptotics",
    "fwtheory.kernel", "fwtheory.mc", "fwtheory.mc.estimators", "fwtheory.comparison",
    "fwtheory.depth_saturation", "fwtheory.testing", "fwtheory.validation", "fwtheory.errors",
]
SKIP_PREFIXES = ("fwtheory.cli",)          # documented on the CLI page


def _fence(text, lang="text"):
    text = textwrap.dedent(text or "").strip("\n")
    fence = "```"
    while fence in text:
        fence += "`"
    return f"{fence}{lang}\n{text}\n{fence}\n"


def _signature(obj, name):
    try:
        return f"{name}{inspect.signature(obj)}"
    except (TypeError, ValueError):
        return name


def _public_modules():
    import fwtheory

    found = set()
    for info in pkgutil.walk_packages(fwtheory.__path__, "fwtheory."):
        parts = info.name.split(".")
        if any(p.startswith("_") for p in parts) or info.name.startswith(SKIP_PREFIXES):
            continue
        found.add(info.name)
    ordered = [m for m in MODULE_ORDER if m == "fwtheory" or m in found]
    return ordered + sorted(found - set(ordered))


def _members(module):
    names = getattr(module, "__all__", None)
    if names is None:
        names = [n for n, v in vars(module).items()
                 if not n.startswith("_") and getattr(v, "__module__", None) == module.__name__
                 and (inspect.isfunction(v) or inspect.isclass(v))]
    return list(names)


def _class_members(cls):
    out = []
    for name, value in vars(cls).items():
        if name.startswith("_") or not (inspect.isfunction(value) or isinstance(value, property)):
            continue
        doc = inspect.getdoc(value)
        if not doc:
            continue
        if isinstance(value, property):
            out.append((f"{cls.__name__}.{name}  (property)", doc))
        else:
            out.append((_signature(value, f"{cls.__name__}.{name}"), doc))
    return out


def api_markdown():
    """The API reference page (markdown)."""
    out = io.StringIO()
    out.write("# API reference\n\n"
              "Generated from the docstrings by `docs/gen_reference.py` at every documentation "
              "build. Normalizations of all quantities: [Conventions](conventions.md).\n\n")
    modules = _public_modules()
    out.write("Modules: " + ", ".join(f"`{m}`" for m in modules) + ".\n\n")
    for modname in modules:
        module = import_module(modname)
        out.write(f"## `{modname}`\n\n")
        out.write(_fence(inspect.getdoc(module) or "(no module docstring)"))
        out.write("\n")
        if modname == "fwtheory":          # the package re-exports; each is documented at home
            names = [n for n in module.__all__ if not n.startswith("__")]
            rows = []
            for n in names:
                obj = getattr(module, n)
                home = getattr(obj, "__module__", modname)
                rows.append(f"| `fwtheory.{n}` | `{home}` |")
            out.write("| public name | defined in |\n|---|---|\n" + "\n".join(rows) + "\n\n")
            continue
        for name in _members(module):
            obj = getattr(module, name)
            home = getattr(obj, "__module__", None)
            if (inspect.isfunction(obj) or inspect.isclass(obj)) and home and home != modname \
                    and home.startswith("fwtheory") and not home.split(".")[-1].startswith("_") \
                    and home in modules:
                out.write(f"### `{modname}.{name}`\n\nRe-exported from `{home}`.\n\n")
                continue
            if inspect.isclass(obj):
                out.write(f"### class `{_signature(obj, name)}`\n\n")
                out.write(_fence(inspect.getdoc(obj) or "(no docstring)"))
                for sig, doc in _class_members(obj):
                    out.write(f"\n**`{sig}`**\n\n")
                    out.write(_fence(doc))
                out.write("\n")
            elif callable(obj):
                out.write(f"### `{_signature(obj, name)}`\n\n")
                out.write(_fence(inspect.getdoc(obj) or "(no docstring)"))
                out.write("\n")
            else:
                out.write(f"### `{name}`\n\n")
                out.write(_fence(repr(obj), "python"))
                out.write("\n")
    return out.getvalue()


@contextmanager
def _columns(width):
    old = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = str(width)
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("COLUMNS", None)
        else:
            os.environ["COLUMNS"] = old


def cli_markdown():
    """The CLI reference page, rendered from ``fwtheory.cli.build_parser()``."""
    from fwtheory.cli import build_parser

    out = io.StringIO()
    out.write("# Command-line reference\n\n"
              "Generated from the argparse parser (`fwtheory.cli.build_parser()`) by "
              "`docs/gen_reference.py` at every documentation build. Every sub-command is also "
              "`python -m fwtheory <command>`. Exit status: 0 on success, 2 for invalid input "
              "(one line on stderr), 3 for numerical failure; `fwtheory validate` returns 1 when "
              "a claim fails.\n\n")
    with _columns(96):
        parser = build_parser()
        out.write("## `fwtheory`\n\n")
        out.write(_fence(parser.format_help()))
        sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        for name, p in sub.choices.items():
            out.write(f"\n## `fwtheory {name}`\n\n")
            out.write(_fence(p.format_help()))
    return out.getvalue()


def _recursion_section(rec, name, ens):
    """One correlator's section of the recursions page: the recursion, its
    dependencies and its first-layer values."""
    import sympy

    first = {k: sympy.sstr(v) for k, v in rec.initial.items()}
    return (f"### {name} ({ens})\n\n" + _fence(str(rec))
            + f"\nDepends on: {', '.join(rec.dependencies)}. First layer (n0 -> infinity): "
              f"`{first['gaussian']}` (Gaussian first layer), `{first['orthogonal']}` "
              f"(orthogonal first layer).\n\n")


def recursions_markdown():
    """The derived recursions of every correlator, both ensembles."""
    from fwtheory import quantities
    from fwtheory.symbolic import derive

    names = getattr(quantities, "ALL_CORRELATORS", quantities.CORRELATORS)

    out = io.StringIO()
    out.write("# Derived recursions\n\n"
              "Printed from `fwtheory.derive(name, ensemble)` at every documentation build, so "
              "they are the recursions `predict` compiles. Notation: `<s^a t^b u^c v^e z^d>` is the "
              "Gaussian expectation at the layer-l kernel K of sigma^a sigma'^b sigma''^c sigma'''^e "
              "z^d, `dK[...]` and `dK2[...]` its first and second K-derivatives; on the right-hand "
              "side K, V, Theta, ... are the layer-l values. Normalizations: "
              "[Conventions](conventions.md); method: [Derivation](derivation.md).\n\n")
    for ens in ("gaussian", "orthogonal"):
        out.write(f"## {ens.capitalize()} weights\n\n")
        for name in names:
            out.write(_recursion_section(derive(name, ens), name, ens))
    from fwtheory.symbolic import ORDER2_NAMES

    out.write("## Order 1/n^2 (preactivations, both ensembles)\n\n"
              "E[z^2] = K + G1/n + G2/n^2, Cov(z_i^2, z_k^2) = V/n + V1/n^2 and "
              "kappa(z_i^2, z_j^2, z_k^2) = U6/n^2 (i, j, k distinct); `dK3[...]`, `dK4[...]` are "
              "third and fourth K-derivatives ([Derivation](derivation.md)). Not used by "
              "`predict`.\n\n")
    for ens in ("gaussian", "orthogonal"):
        for name in ORDER2_NAMES:
            out.write(_recursion_section(derive(name, ens), name, ens))
    return out.getvalue()


PAGES = {"api.md": api_markdown, "cli.md": cli_markdown, "recursions.md": recursions_markdown}


# ------------------------------------------------------------ mkdocs hook
def on_files(files, config):
    """mkdocs hook: add the generated pages (replacing files of the same name)."""
    from mkdocs.structure.files import File

    for uri, make in PAGES.items():
        existing = files.get_file_from_path(uri)
        if existing is not None:
            files.remove(existing)
        files.append(File.generated(config, uri, content=make()))
    return files


def main(argv=None):
    out_dir = (argv or sys.argv[1:] or ["site_reference"])[0]
    os.makedirs(out_dir, exist_ok=True)
    for uri, make in PAGES.items():
        path = os.path.join(out_dir, uri)
        with open(path, "w", encoding="utf-8") as fh:
            fh.write(make())
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
