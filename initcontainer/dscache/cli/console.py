"""The rich console the CLI prints its reports on (tables, trees): as wide as the terminal on a
terminal, and never cut or wrapped when stdout is a file or a pipe.

rich sizes a console that is not a terminal at `$COLUMNS` or 80 columns and folds or cuts what is
wider, so `dscache status --cache DIR > status.txt` lost the ends of long paths and refs. Off a
terminal the console is given `UNBOUNDED` columns instead: tables and trees take only the width their
content needs (rich pads nothing to the console's width), so every line is whole.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.console import Console

UNBOUNDED = 1 << 20
"""Columns of a console that is not a terminal: more than any line dscache prints."""


def report_console() -> Console:
    """A console on the current `sys.stdout`: the terminal's width on a terminal, else `UNBOUNDED`."""
    from rich.console import Console

    if sys.stdout.isatty():
        return Console()
    return Console(width=UNBOUNDED)
