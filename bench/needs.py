"""What a benchmark needs beyond `pip install -e .`: modules of the `dev` extra (moto's S3 server for
the S3 contenders, molmospaces-resources for its baseline), checked before anything starts, so that a
benchmark run from a plain install stops with one line saying what to install instead of a traceback
after its first minute."""

from __future__ import annotations

from collections.abc import Mapping
from importlib.util import find_spec

INSTALL = "pip install -e '.[dev]'"


def missing(modules: Mapping[str, str]) -> list[str]:
    """The names of `modules` (module name -> what it is for) that cannot be imported, in order."""
    return [name for name in modules if find_spec(name) is None]


def require(modules: Mapping[str, str], bench: str) -> None:
    """Raise SystemExit with one line naming each module of `modules` that is not installed, what it
    is for and the command that installs it; return when all are there."""
    absent = missing(modules)
    if absent:
        what = "; ".join(f"{name} ({modules[name]})" for name in absent)
        raise SystemExit(f"{bench}: not installed: {what}; install the dev extra first: {INSTALL}")
