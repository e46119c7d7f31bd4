"""The documentation: the mkdocs site builds with --strict (warnings are errors),
its generated reference pages document the code, and the tutorial's examples
produce the outputs printed on the page."""

import pathlib
import re
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]


def test_mkdocs_build_strict(tmp_path):
    site = tmp_path / "site"
    proc = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (site / "index.html").exists()
    for page in ("conventions", "derivation", "recursions", "unverified", "tutorial",
                 "validation", "references", "api", "cli"):
        assert (site / page / "index.html").exists(), page
    from fwtheory.cli import COMMANDS

    cli = (site / "cli" / "index.html").read_text()
    for name in COMMANDS:
        assert f"fwtheory {name}" in cli, name
    api = (site / "api" / "index.html").read_text()
    for name in ("predict", "simulate", "derive", "validate", "Prediction"):
        assert name in api
    assert not (ROOT / "docs" / "api.md").exists()    # generated in memory, never written to docs/


def test_generated_pages_follow_the_code():
    sys.path.insert(0, str(ROOT / "docs"))
    try:
        import gen_reference
    finally:
        sys.path.remove(str(ROOT / "docs"))
    from fwtheory.cli import COMMANDS, build_parser

    cli = gen_reference.cli_markdown()
    for name in COMMANDS:
        assert f"## `fwtheory {name}`" in cli
    assert build_parser().format_usage().split()[1] in cli
    api = gen_reference.api_markdown()
    import fwtheory

    for name in fwtheory.__all__:
        if not name.startswith("__"):
            assert f"`fwtheory.{name}`" in api, name
    rec = gen_reference.recursions_markdown()
    assert "V^(l+1) = -3*<s^2>**2*C_W**2" in rec      # orthogonal V source
    # the pages come from docstrings and help texts: no citation of files outside the repository
    for text in (api, cli, rec):
        assert not re.search(r"theory[.]md|[.][.]/shared|shared/[\w.-]+[.]md", text)


_RUN_TUTORIAL = r"""
import doctest, re, sys
text = open(sys.argv[1], encoding="utf-8").read()
source = "\n".join(re.findall(r"```pycon\n(.*?)```", text, flags=re.S))
test = doctest.DocTestParser().get_doctest(source, {}, "tutorial.md", sys.argv[1], 0)
runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
runner.run(test)
failed, attempted = runner.summarize(verbose=False)
print(f"attempted={attempted} failed={failed}")
sys.exit(1 if failed or attempted < 20 else 0)
"""


def test_tutorial_examples_run_as_printed():
    # a fresh interpreter, as a reader would run the page top to bottom
    page = ROOT / "docs" / "tutorial.md"
    assert page.read_text().count("```pycon") >= 6
    proc = subprocess.run([sys.executable, "-c", _RUN_TUTORIAL, str(page)], cwd=ROOT,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-3000:]


@pytest.mark.parametrize("page", ["index.md", "conventions.md", "derivation.md", "unverified.md",
                                  "tutorial.md", "validation.md", "references.md"])
def test_pages_exist_and_link_only_to_existing_pages(page):
    text = (ROOT / "docs" / page).read_text()
    generated = {"api.md", "cli.md", "recursions.md"}
    for target in re.findall(r"\]\(([^)#:]+\.md)", text):
        assert target in generated or (ROOT / "docs" / target).exists(), (page, target)


_DOTTED = re.compile(r"\bfwtheory(?:\.[A-Za-z_][A-Za-z0-9_]*)+")


def _resolve(dotted):
    """Import the longest importable module prefix of ``dotted`` and follow the
    rest as attributes; raises ImportError/AttributeError if it does not exist."""
    import importlib

    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ModuleNotFoundError:
            continue
        for attr in parts[cut:]:
            obj = getattr(obj, attr)
        return obj
    raise ImportError(dotted)


def test_dotted_names_in_docs_resolve():
    # every fwtheory.X / fwtheory.mc.X ... named in the hand-written pages and the
    # README must exist (a renamed or never-written function fails here)
    pages = sorted((ROOT / "docs").glob("*.md")) + [ROOT / "README.md"]
    names = {}
    for page in pages:
        for name in _DOTTED.findall(page.read_text(encoding="utf-8")):
            names.setdefault(name, page.name)
    assert len(names) > 20
    missing = []
    for name, page in sorted(names.items()):
        try:
            _resolve(name)
        except (ImportError, AttributeError) as exc:
            missing.append(f"{page}: {name} ({exc})")
    # `Class.attribute` in backticks, for a class exported by fwtheory or fwtheory.mc
    import fwtheory
    import fwtheory.mc

    for page in pages:
        for cls, attr in re.findall(r"`([A-Z][A-Za-z0-9_]*)\.([A-Za-z_][A-Za-z0-9_]*)", page.read_text()):
            owner = getattr(fwtheory, cls, None) or getattr(fwtheory.mc, cls, None)
            if owner is not None and not hasattr(owner, attr):
                missing.append(f"{page.name}: {cls}.{attr}")
    assert not missing, "\n".join(missing)


def test_validate_timings_agree():
    # the quick/full wall times are stated on the validation page and quoted by the
    # home page, the CLI help and the fwtheory.validate docstring: they must agree
    import fwtheory
    from fwtheory.cli import build_parser

    quick = r"about (\d+) s on 2 idle cores"
    validation = (ROOT / "docs" / "validation.md").read_text()
    index = (ROOT / "docs" / "index.md").read_text()
    sub = build_parser()._subparsers._group_actions[0].choices["validate"]
    help_text = " ".join(sub.format_help().split())
    doc = " ".join(fwtheory.validate.__doc__.split())
    texts = {"validation.md": validation, "index.md": index, "CLI help": help_text, "docstring": doc}
    found = {k: re.findall(quick, v) for k, v in texts.items()}
    assert all(found.values()), found
    assert len({x for v in found.values() for x in v[:1]}) == 1, found
    table = re.search(r"\| `--quick` \|.*\| ([\d.]+) s \(incl. imports\) \|", validation)
    assert table and round(float(table.group(1))) == int(found["validation.md"][0])
    full = {k: re.findall(r"full run,? \(?about (\d+) s", v) for k, v in
            (("validation.md", validation), ("CLI help", help_text), ("docstring", doc))}
    assert all(full.values()) and len({v[0] for v in full.values()}) == 1, full
