"""Tables and a plot from a sweep's results file (``fwtheory sweep --report``)."""

__all__ = ["report_rows", "output_value", "report_table", "report_plot", "varying_arguments",
           "DEFAULT_OUTPUT"]

import math

from .._io import format_table
from ..errors import ParameterError
from .results import latest_rows, read_results

DEFAULT_OUTPUT = "V/K^2"


def report_rows(rows_or_path):
    """The latest row of every task, in file order; from rows or a results file path."""
    rows = read_results(rows_or_path) if not isinstance(rows_or_path, list) else rows_or_path
    return list(latest_rows(rows).values())


def varying_arguments(rows):
    """(varying, fixed): argument names whose values differ between rows (in the
    order first seen), and {name: value} of those that do not."""
    names = []
    for r in rows:
        for k in list(r.get("grid") or []) + list(r["args"]):
            if k not in names:
                names.append(k)
    varying, fixed = [], {}
    for k in names:
        values = {repr(r["args"].get(k)) for r in rows}
        if len(values) > 1:
            varying.append(k)
        else:
            fixed[k] = rows[0]["args"].get(k)
    return varying, fixed


def _at(arr, layer):
    if arr is None:
        return None
    if not isinstance(arr, list):
        return arr
    if not arr:
        return None
    if layer is None:
        return arr[-1]
    if not 1 <= layer <= len(arr):
        return None
    return arr[layer - 1]


def output_value(row, name, layer=None):
    """(value, standard error or None, theory or None) of output ``name`` (a ratio such
    as "V/K^2" or a correlator such as "K") at ``layer`` (default: the last one)."""
    out = row.get("outputs") or {}
    if "quantities" in out:                              # compare
        q = out["quantities"].get(name)
        if q is None:
            return None, None, None
        return _at(q.get("measured"), layer), _at(q.get("se"), layer), _at(q.get("theory"), layer)
    ratios = out.get("ratios") or {}
    if name in ratios:
        return _at(ratios[name], layer), _at((out.get("ratios_se") or {}).get(name), layer), None
    if name in out and isinstance(out[name], list):
        return _at(out[name], layer), _at(out.get(name + "_se"), layer), None
    return None, None, None


def _known_outputs(rows):
    names = []
    for r in rows:
        out = r.get("outputs") or {}
        cands = list((out.get("quantities") or {})) + list(out.get("ratios") or {})
        cands += [k for k, v in out.items() if isinstance(v, list) and k not in ("layers", "notes")
                  and not k.endswith("_se")]
        for c in cands:
            if c not in names:
                names.append(c)
        if names:
            break
    return names


def _check_output(rows, name):
    ok = [r for r in rows if r["status"] == "ok"]
    if ok and all(output_value(r, name)[0] is None and "quantities" not in (r.get("outputs") or {})
                  and name not in ((r.get("outputs") or {}).get("ratios") or {}) for r in ok):
        known = _known_outputs(ok)
        raise ParameterError("output", f"unknown output {name!r} (known: {', '.join(known)})")


def _sort_key(v):
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return (0, float(v), "")
    return (1, 0.0, repr(v))


def _cell(v, se=None):
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "-"
    if se is None:
        return f"{v:.6g}"
    return f"{v:.4g}±{se:.2g}"


def report_table(rows, output=DEFAULT_OUTPUT, layer=None):
    """Text report: a summary line, the fixed arguments, one row per task (its
    varying arguments, status, seconds and ``output`` at ``layer``), and the errors."""
    rows = report_rows(rows)
    if not rows:
        return "# sweep report: no results"
    _check_output(rows, output)
    varying, fixed = varying_arguments(rows)
    rows = sorted(rows, key=lambda r: tuple(_sort_key(r["args"].get(k)) for k in varying))
    ok = sum(r["status"] == "ok" for r in rows)
    verbs = sorted({r["verb"] for r in rows})
    seconds = sum((r.get("timing") or {}).get("seconds") or 0.0 for r in rows)
    versions = sorted({(r.get("software") or {}).get("fwtheory", "?") for r in rows})
    compare = "compare" in verbs
    where = f"layer {layer}" if layer else "each task's last layer"
    lines = [f"# sweep report: {len(rows)} tasks ({', '.join(verbs)}): {ok} ok, {len(rows) - ok} failed; "
             f"{seconds:.1f} task-seconds; fwtheory {', '.join(versions)}",
             "# fixed: " + (", ".join(f"{k}={v}" for k, v in fixed.items()) or "-"),
             f"# {output} at {where}" + (" (measured, theory, verdict)" if compare else "")]
    header = list(varying) + ["status", "seconds", output] + (["theory", "verdict"] if compare else [])
    body = []
    for r in rows:
        value, se, theory = output_value(r, output, layer) if r["status"] == "ok" else (None, None, None)
        cells = [str(r["args"].get(k)) for k in varying]
        secs = (r.get("timing") or {}).get("seconds")
        cells += [r["status"], "-" if secs is None else f"{secs:.2f}", _cell(value, se)]
        if compare:
            verdict = "-"
            q = ((r.get("outputs") or {}).get("quantities") or {}).get(output)
            if q is not None:
                verdict = _at(q.get("verdict"), layer) or "-"
            cells += [_cell(theory), verdict]
        body.append(cells)
    lines.append(format_table(header, body, align="left"))
    failed = [r for r in rows if r["status"] != "ok"]
    if failed:
        lines.append("# failed tasks")
        for r in failed:
            args = ", ".join(f"{k}={r['args'].get(k)}" for k in varying) or r["key"]
            lines.append(f"{args}: {r.get('error')}")
    return "\n".join(lines)


def report_plot(path, rows, output=DEFAULT_OUTPUT, x=None, layer=None):
    """PNG of ``output`` (at ``layer``, default the last) against grid parameter ``x``
    (default: the varying argument with the most values), one curve per value of the
    other varying arguments, 1-SE error bars where there are standard errors."""
    from ..plotting import Panel, Series, write_panels

    rows = [r for r in report_rows(rows) if r["status"] == "ok"]
    if not rows:
        raise ParameterError("plot", "no successful tasks to plot")
    _check_output(rows, output)
    varying, _ = varying_arguments(rows)
    numeric = [k for k in varying if all(isinstance(r["args"].get(k), (int, float)) for r in rows)]
    if x is None:
        if not numeric:
            raise ParameterError("x", "no numeric grid parameter to plot against; name one with --x")
        x = max(numeric, key=lambda k: len({r["args"][k] for r in rows}))
    x = x.replace("-", "_")
    if x not in numeric:
        raise ParameterError("x", f"must be a numeric grid parameter ({', '.join(numeric) or 'none'}), got {x!r}")
    others = [k for k in varying if k != x]
    groups = {}
    for r in rows:
        label = ", ".join(f"{k}={r['args'].get(k)}" for k in others) or output
        groups.setdefault(label, []).append(r)
    series = []
    for label, rs in groups.items():
        rs = sorted(rs, key=lambda r: r["args"][x])
        vals = [output_value(r, output, layer) for r in rs]
        xs = [r["args"][x] for r in rs]
        ys = [float("nan") if v[0] is None else v[0] for v in vals]
        has_se = any(v[1] is not None for v in vals)
        errs = [float("nan") if v[1] is None else v[1] for v in vals] if has_se else None
        series.append(Series(label, xs, ys, errs, style="points" if has_se else "line"))
    where = f"layer {layer}" if layer else "each task's last layer"
    panel = Panel(title=f"{output} at {where}", ylabel=output, series=series)
    return write_panels(path, [panel], xlabel=x, title=f"sweep: {len(rows)} tasks")
