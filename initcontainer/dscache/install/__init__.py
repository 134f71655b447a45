"""The single writer: plan -> ingest -> verify -> commit (docs/architecture.md, "One install").

`pipeline` (the flow, under the writer lock), `ingest` (one item into staging, verified), `extract`,
`workers` (the process pool), `commit` (publish a version by rename), `progress` (events and
counters), `kubestatus` (progress into the DatasetCache's status from inside the installer Job).
"""
