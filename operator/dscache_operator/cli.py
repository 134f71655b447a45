"""`dscache-operator`: entry point of the control plane."""

from __future__ import annotations

import sys
from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    """Not yet implemented: the operator is built in its own issue; exit 2 says so instead of pretending."""
    del argv
    print(
        "dscache-operator: the operator is not implemented yet (see the control-plane issue)", file=sys.stderr
    )
    return 2


if __name__ == "__main__":
    sys.exit(main())
