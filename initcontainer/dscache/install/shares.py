"""Pure: which worker of an install team transfers which item.

Every worker plans the whole install and computes the same assignment from the plan alone, so the
workers need no coordinator: items go largest first (ties by name) to the worker with the fewest bytes
so far (ties by lowest index), the greedy longest-processing-time rule, whose largest share is at most
4/3 of the best possible one (Graham, "Bounds on multiprocessing timing anomalies", 1969).
"""

from __future__ import annotations

from collections.abc import Sequence


def assign(items: Sequence[tuple[str, int]], workers: int) -> list[int]:
    """The worker index (0 .. workers-1) of each item, given as (unique name, its work: `WorkItem.work`).

    Deterministic: depends only on the names, sizes and `workers`, not on the order of `items`.
    Raises ValueError if `workers` < 1.
    """
    if workers < 1:
        raise ValueError(f"workers must be at least 1, not {workers}")
    order = sorted(range(len(items)), key=lambda i: (-items[i][1], items[i][0]))
    loads = [0] * workers
    owner = [0] * len(items)
    for i in order:
        worker = min(range(workers), key=lambda w: (loads[w], w))
        owner[i] = worker
        loads[worker] += max(items[i][1], 1)
    return owner
