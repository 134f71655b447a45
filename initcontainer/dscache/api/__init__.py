"""The DatasetCache resource, the one contract of both planes (docs/architecture.md, "The resource contract").

`resource` (group, version, kind, plural, short names), `spec` and `manifest` (the spec model and
where a spec comes from), `status` (the status model), `names` (safe names, `DT/SRC=VER`),
`envnames` (the workload's variables), `unsafeenv` (variable names a cache may not set), `syspaths`
(mount paths it may not use), `sizes`, `durations`, `urls`. This `__init__` imports nothing: `prepare`
uses the standard-library modules (`names`, `envnames`, `unsafeenv`, `sizes`, `durations`) without
pydantic or yaml.
"""
