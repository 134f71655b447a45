"""The on-disk contract of a cache volume (docs/architecture.md, "The cache volume").

`paths` (where everything lives), `records` (completion records and refs), `atomic` (tmp + fsync +
rename), `fsops` (read-only trees, merges, flushes), `members` (what a version may hold), `lock` (the
one writer), `liveness`, `catalog` (published versions). Standard library only: `prepare` uses it.
"""
