"""The environment a workload gets (`dscache.api.envnames`), as `export` lines for a shell."""

from __future__ import annotations

from pathlib import Path

from dscache.api import envnames
from dscache.prepare.request import Wanted


def build_env(links: Path, wanted: list[Wanted]) -> dict[str, str]:
    """Variable -> stable link path; raises EnvNameError on invalid or colliding names."""
    return envnames.build_env(links, [(w.key, w.env) for w in wanted])


def shell_quote(value: str) -> str:
    return "'" + value.replace("'", "'\"'\"'") + "'"


def render_exports(env: dict[str, str]) -> str:
    return "".join(f"export {name}={shell_quote(value)}\n" for name, value in env.items())
