"""`fwtheory validate` keeps its files out of the working directory (issue 11)."""

from pathlib import Path

from fwtheory.cli import main
from fwtheory.validation._paths import DEFAULT_OUT_DIR

ROOT = Path(__file__).resolve().parents[1]


def test_default_output_directory_is_own_and_ignored(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["validate", "--quick", "--only", "3"]) == 0
    top = sorted(p.name for p in tmp_path.iterdir())
    assert top == [DEFAULT_OUT_DIR]
    written = sorted(p.name for p in (tmp_path / DEFAULT_OUT_DIR).iterdir())
    assert written == ["v3_kstar0_tanh.json", "v3_kstar0_tanh.png", "validation_summary.json"]
    assert f"files in {DEFAULT_OUT_DIR}" in capsys.readouterr().out
    ignored = (ROOT / ".gitignore").read_text().splitlines()
    assert f"/{DEFAULT_OUT_DIR}/" in ignored
