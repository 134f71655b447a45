"""`dscache prepare`: the lock-free init-container path (docs/architecture.md, "One prepare").

`run.prepare(PrepareRequest)` (the library call; `dscache.cli.prepare` is its argparse adapter) ->
`request` + `waiting` (what to prepare, wait for publication) -> `scratch` (optional node-local copies:
`consistency`, `copytree`, `staging`, `eviction`, `lastuse`) -> `links` (stable paths, atomic `swap`)
-> `envfile`. `scratch_status` backs `dscache status --scratch`.
Standard library only: this runs in every training pod and its start-up time is a product metric.
"""
