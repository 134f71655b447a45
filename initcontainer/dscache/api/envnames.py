"""The environment variables a workload gets, one rule shared by the pod webhook and `prepare`.

`DSCACHE_ROOT` is the links directory; each source gets the name its item of `spec.versions` gives
(`envName`), else `DSCACHE_<DT>_<SRC>` upper-cased with every character other than A-Z and 0-9 replaced by `_`
(`objects/thor` -> `DSCACHE_OBJECTS_THOR`). The values are the stable link paths `<root>/<dt>/<src>`,
never version paths, so they survive a version switch. A name that changes how programs load code
(`dscache.api.unsafeenv`) is refused here too, for specs and refs written before that rule. Standard
library only (`prepare` imports it).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import PurePath

from dscache.api.names import VersionKey
from dscache.api.unsafeenv import refusal
from dscache.errors import InvalidInputError

ROOT_VAR = "DSCACHE_ROOT"
ENV_NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$"
_ENV_NAME = re.compile(ENV_NAME_PATTERN)
_NOT_ALNUM = re.compile(r"[^A-Z0-9]")


class EnvNameError(InvalidInputError):
    """A variable name is invalid or used twice; the message names the version and the variable."""


def derived_name(key: VersionKey) -> str:
    """The variable of a source the spec does not name: `DSCACHE_<DT>_<SRC>`."""
    return "DSCACHE_" + _NOT_ALNUM.sub("_", f"{key.data_type}_{key.source}".upper())


def build_env(root: PurePath, sources: Iterable[tuple[VersionKey, str | None]]) -> dict[str, str]:
    """Variable -> path for `(version, its envName or None)` pairs, `DSCACHE_ROOT` first.

    Raises EnvNameError on an invalid or refused name, or two sources with one name.
    """
    env = {ROOT_VAR: str(root)}
    for key, explicit in sources:
        name = explicit or derived_name(key)
        if not _ENV_NAME.match(name):
            raise EnvNameError(f"{key}: {name!r} is not a valid environment variable name")
        refused = refusal(name)
        if refused is not None:
            raise EnvNameError(f"{key}: {refused}")
        if name in env:
            raise EnvNameError(f"{key}: environment variable {name} is already used; name it in the spec")
        env[name] = str(root / key.data_type / key.source)
    return env
