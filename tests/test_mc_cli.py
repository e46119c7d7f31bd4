"""`fwtheory simulate` command (called through its own sub-parser)."""

import argparse
import json

import pytest

from fwtheory import ParameterError
from fwtheory.cli import simulate as cli_simulate


def _args(argv):
    parser = argparse.ArgumentParser(prog="fwtheory")
    cli_simulate.add_parser(parser.add_subparsers(dest="command"))
    return parser.parse_args(["simulate"] + argv)


NET = ["--activation", "relu", "--cw", "2", "--depth", "3", "--width", "16", "--samples", "200"]


def test_table_by_default(capsys):
    assert cli_simulate.run(_args(NET)) == 0
    out = capsys.readouterr().out
    assert "V/K^2" in out and "F/(K Theta)" in out and "±" in out
    assert len(out.strip().splitlines()) == 2 + 1 + 3


def test_json_and_atomic_out(tmp_path, capsys):
    path = tmp_path / "sim.json"
    assert cli_simulate.run(_args(NET + ["--json", "--out", str(path), "--seed", "3"])) == 0
    printed = json.loads(capsys.readouterr().out)
    written = json.loads(path.read_text())
    assert printed == written
    assert written["seed"] == 3 and written["samples"] == 200
    for key in ("K", "G1", "V", "Theta", "Theta1", "D", "F", "A", "B"):
        assert len(written[key]) == 3 and len(written[key + "_se"]) == 3
    assert list(tmp_path.iterdir()) == [path]         # no temporary file left behind


def test_widths(capsys):
    assert cli_simulate.run(_args(NET + ["--widths", "8,16", "--json"])) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["extrapolation"]["widths"] == [8, 16]


def test_bad_widths():
    with pytest.raises(ParameterError, match="widths"):
        cli_simulate.run(_args(NET + ["--widths", "8,x"]))
    with pytest.raises(ParameterError, match="samples"):
        cli_simulate.run(_args(["--samples", "1"]))
