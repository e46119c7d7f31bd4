"""Where the validation suite writes its files by default.

A directory of its own (not the working directory), so that running
``fwtheory validate`` in a checkout leaves no loose ``v<k>_*.json``/``.png``
files; the repository's ``.gitignore`` lists it.
"""

__all__ = ["DEFAULT_OUT_DIR"]

#: default ``out_dir`` of :func:`fwtheory.validate` and ``fwtheory validate --out-dir``
DEFAULT_OUT_DIR = "validation-output"
