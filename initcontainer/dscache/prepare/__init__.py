"""`dscache prepare`: the lock-free init-container path.

`command` (CLI) -> `request` + `waiting` (what to prepare, wait for publication) -> `scratch` (optional
node-local copies: `consistency`, `copytree`, `staging`, `eviction`, `lastuse`) -> `links` (stable
paths, atomic `swap`) -> `envfile`. `scratch_status` backs `dscache status --scratch`.
Standard library only: this runs in every training pod and its start-up time is a product metric.
"""
