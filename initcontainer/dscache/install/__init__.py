"""The single writer: plan -> ingest -> verify -> commit (docs/architecture.md, "One install").

`pipeline` (the flow, under the writer lock), `ingest` (one item into staging, verified), `extract`,
`workers` (the process pool), `failures` (an item's failure as one line naming its version, with
what helps), `commit` (publish a version by rename), `progress` (events and
counters), `kubestatus` (progress into the DatasetCache's status from inside the installer Job).
"""
