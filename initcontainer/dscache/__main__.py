"""`python -m dscache`: the same as the `dscache` command."""

from dscache.cli.app import entry

entry()
