"""The on-disk contract of a cache volume: paths, records, atomic writes, the writer lock."""
