"""What "newest" means for the versions of one source: the highest version name.

`gc --keep N` and `spec.retention.keep` keep the N highest names. Names compare run by run: a run of
digits as a number, any other run as text (case-folded), digits before letters, a name before the
same name continued. So `v9 < v10 < v10.1`, `20250101 < 20250601`, `2025-06-01 < 2025-10-01`,
`1.9.2 < 1.10.0`, and `v3 < v3-rc1` (no pre-release rules). Installation order plays no part: a
version installed again to reproduce an old run does not push out a higher one.

Why not a library: `packaging.version.Version` (PEP 440) rejects 5 of 13 typical dataset version
names (measured: `2025-06-01`, `thor-v3`, `main`, `r42`, `objaverse-2024-10`), and `natsort` would
be a new dependency for this one six-line key.
"""

from __future__ import annotations

import re

KEEP_RULE = (
    "those with the highest version names, digit runs compared as numbers "
    "(v9 < v10, 20250101 < 20250601), whatever order they were installed in"
)
"""How `--keep N` and `spec.retention.keep` choose: the one wording of `--help`, the CRD and README."""

_DIGITS = re.compile(r"(\d+)")

VersionOrder = tuple[tuple[tuple[int, int, str], ...], str]


def version_order(version: str) -> VersionOrder:
    """Sort key of a version name: sorted ascending, the highest (newest) name comes last.

    Shape: (runs, name), each run `(0, number, digits)` or `(1, 0, casefolded text)`; the name
    itself last, so distinct names never tie (`v01` < `v1`, `V1` < `v1`).
    """
    runs = tuple(
        (0, int(run), run) if i % 2 else (1, 0, run.casefold())
        for i, run in enumerate(_DIGITS.split(version))
        if run
    )
    return runs, version
