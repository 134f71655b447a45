"""Looking after a cache (under the writer lock): `gc`, `release` (drop a ref), `verify`."""
