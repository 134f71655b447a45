"""Looking after a cache: gc, release, verify."""
