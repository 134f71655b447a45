"""Least-recently-used eviction of scratch copies under a byte budget.

The decision is a pure function; the caller lists what scratch holds and removes the victims by
rename-then-delete, so a reader never sees half a copy.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from dscache.api.names import VersionKey
from dscache.prepare.lastuse import list_uses
from dscache.prepare.scratchpaths import ScratchPaths
from dscache.store.records import read_complete


@dataclass(frozen=True)
class Resident:
    """A copy on scratch: its size (from its completion record) and last use."""

    key: VersionKey
    bytes: int
    last_used: float


def plan_eviction(
    residents: list[Resident], protected: set[VersionKey], need: int, budget: int
) -> list[VersionKey] | None:
    """Oldest unprotected copies to evict so `need` more bytes fit in `budget`; None if it cannot fit.

    Nothing is evicted in vain: when even evicting every candidate is not enough, the answer is None.
    """
    usage = sum(r.bytes for r in residents)
    victims: list[VersionKey] = []
    for resident in sorted(residents, key=lambda r: r.last_used):
        if usage + need <= budget:
            break
        if resident.key not in protected:
            victims.append(resident.key)
            usage -= resident.bytes
    return victims if usage + need <= budget else None


def effective_budget(max_bytes: int | None, usage: int, free: int) -> int:
    """The bytes copies may take: the configured budget, capped by what the disk can hold."""
    capacity = usage + free
    return capacity if max_bytes is None else min(max_bytes, capacity)


def free_bytes(scratch: ScratchPaths) -> int:
    st = os.statvfs(scratch.root)
    return st.f_bavail * st.f_frsize


def list_residents(scratch: ScratchPaths) -> list[Resident]:
    """Copies on scratch that carry a completion record (others hold no trusted bytes to account for)."""
    residents: list[Resident] = []
    for use in list_uses(scratch):
        record = read_complete(scratch.version_dir(use.key))
        if record is not None:
            residents.append(Resident(use.key, record.bytes, use.last_used))
    return residents
