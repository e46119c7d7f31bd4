"""Sweeps: grids of ``predict``, ``simulate`` or ``compare`` runs, serially or on
Dask (a local cluster or a remote scheduler), resumable and reproducible.

``fwtheory.sweep(spec, out)`` / ``fwtheory sweep SPEC --out results.jsonl``;
``fwtheory sweep --report results.jsonl`` for tables and a plot. See
docs/sweeps.md.
"""

__all__ = ["sweep", "SweepResult", "SweepSpec", "Task", "load_spec", "read_results", "latest_rows",
           "report_rows", "report_table", "report_plot", "run_task", "task_key", "task_seed"]

from .execute import SweepResult, sweep
from .report import report_plot, report_rows, report_table
from .results import latest_rows, read_results
from .spec import SweepSpec, Task, load_spec, task_key, task_seed
from .tasks import run_task
