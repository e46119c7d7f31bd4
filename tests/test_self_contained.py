"""The repository is self-contained: no tracked file cites a document that is not
part of it (a private reference file, a sibling directory of the checkout, a
path on one developer's machine). Sources are cited as literature (paper,
section, equation) or as pages under docs/."""

import pathlib
import re
import subprocess

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]

# written so that this file does not match itself
FORBIDDEN = re.compile(r"theory[.]md|theory[ ]sheet|reference[ ]sheet", re.IGNORECASE)
OUTSIDE = re.compile(r"[.][.]/shared|(?<![\w.])/wor[k]/|\bshared/[\w.-]+[.]md")
RELATIVE = re.compile(r"(?<![\w.])((?:[.][.]/)+[\w.-][\w./-]*)")


def _tracked_files():
    try:
        out = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
        files = [ROOT / p for p in out.decode().split("\0") if p]
    except (OSError, subprocess.CalledProcessError):      # not a git checkout (e.g. an sdist)
        files = [p for p in ROOT.rglob("*") if p.is_file()
                 and not any(part in (".git", "__pycache__", "site") for part in p.parts)]
    return [p for p in files if p.is_file()]


def _text(path):
    data = path.read_bytes()
    if b"\0" in data:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


def test_tracked_files_are_found():
    names = {p.relative_to(ROOT).as_posix() for p in _tracked_files()}
    assert {"README.md", "mkdocs.yml", "docs/conventions.md", "fwtheory/__init__.py"} <= names


def test_no_reference_to_files_outside_the_repository():
    bad = []
    for path in _tracked_files():
        text = _text(path)
        if text is None:
            continue
        rel = path.relative_to(ROOT).as_posix()
        for lineno, line in enumerate(text.splitlines(), 1):
            for m in FORBIDDEN.finditer(line):
                bad.append(f"{rel}:{lineno}: cites {m.group(0)!r}")
            for m in OUTSIDE.finditer(line):
                bad.append(f"{rel}:{lineno}: path outside the repository {m.group(0)!r}")
            for m in RELATIVE.finditer(line):            # ../x relative to the file must stay inside
                target = (path.parent / m.group(1)).resolve()
                if ROOT != target and ROOT not in target.parents:
                    bad.append(f"{rel}:{lineno}: relative path leaves the repository {m.group(1)!r}")
    assert not bad, "\n".join(bad)


@pytest.mark.parametrize("line, ok", [
    ("see .." + "/shared/" + "notes.md Sec. 1.2", False),
    ("Conventions of the " + "theory" + ".md file", False),
    ("the project's reference " + "sheet", False),
    ("PDLT (Roberts, Yaida, Hanin; arXiv:2106.10165) eq. (4.8)", True),
    ("see docs/conventions.md", True),
], ids=["sibling", "file", "sheet", "paper", "docs"])
def test_the_patterns(line, ok):
    found = bool(FORBIDDEN.search(line) or OUTSIDE.search(line))
    assert found is not ok
