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
