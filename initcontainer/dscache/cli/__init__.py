"""The `dscache` command line: entry point and one thin adapter per command."""
