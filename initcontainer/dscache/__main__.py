"""`python -m dscache`: the same as the `dscache` command."""

from dscache.cli import entry

entry()
