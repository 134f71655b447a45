"""The environment a workload gets: `DSCACHE_ROOT` plus one variable per source, as shell or JSON.

A source's variable is the name the spec gives it (`envNames`), else `DSCACHE_<DT>_<SRC>` upper-cased
with every character other than A-Z and 0-9 replaced by `_` (`objects/thor` -> `DSCACHE_OBJECTS_THOR`).
The values are the stable link paths, never version paths, so they survive a version switch.
"""

from __future__ import annotations

import re
from pathlib import Path

from dscache.api.names import VersionKey
from dscache.prepare.links import link_path
from dscache.prepare.request import RequestError, Wanted

ROOT_VAR = "DSCACHE_ROOT"
_NOT_ALNUM = re.compile(r"[^A-Z0-9]")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def derived_name(key: VersionKey) -> str:
    return "DSCACHE_" + _NOT_ALNUM.sub("_", f"{key.data_type}_{key.source}".upper())


def build_env(links: Path, wanted: list[Wanted]) -> dict[str, str]:
    """Variable -> path; raises RequestError on invalid or colliding names."""
    env = {ROOT_VAR: str(links)}
    for w in wanted:
        name = w.env or derived_name(w.key)
        if not _ENV_NAME.match(name):
            raise RequestError(f"{w.key}: {name!r} is not a valid environment variable name")
        if name in env:
            raise RequestError(f"{w.key}: environment variable {name} is already used; name it in the spec")
        env[name] = str(link_path(links, w.key))
    return env


def shell_quote(value: str) -> str:
    return "'" + value.replace("'", "'\"'\"'") + "'"


def render_exports(env: dict[str, str]) -> str:
    return "".join(f"export {name}={shell_quote(value)}\n" for name, value in env.items())
