"""What a `prepare` call asks for: versions with their link strategy and environment variable name."""

from __future__ import annotations

from dataclasses import dataclass

from dscache.api.names import VersionKey
from dscache.errors import InvalidInputError
from dscache.prepare.links import DIRECTORY, STRATEGIES
from dscache.store.records import Ref


class RequestError(InvalidInputError):
    """The requested versions are inconsistent (a usage error)."""


@dataclass(frozen=True)
class Wanted:
    """One version to prepare."""

    key: VersionKey
    strategy: str = DIRECTORY
    env: str | None = None


def check_request(wanted: list[Wanted]) -> list[Wanted]:
    """Reject two versions for one slot, a slot nested in another one's link, unknown strategies."""
    seen: dict[str, VersionKey] = {}
    for w in wanted:
        if w.strategy not in STRATEGIES:
            choices = " or ".join(STRATEGIES)
            raise RequestError(f"{w.key}: unknown link strategy {w.strategy!r} (use {choices})")
        other = seen.setdefault(w.key.slot, w.key)
        if other != w.key:
            both = f"{other.version} and {w.key.version}"
            raise RequestError(f"{w.key.slot} is requested at two versions: {both}")
    for inner, key in seen.items():
        parts = inner.split("/")
        outer = next((p for p in ("/".join(parts[:n]) for n in range(2, len(parts))) if p in seen), None)
        if outer is not None:
            raise RequestError(
                f"{key} would be linked inside the link of {seen[outer]}; "
                "prepare them with separate --links directories"
            )
    return wanted


def from_ref(ref: Ref) -> list[Wanted]:
    return check_request([Wanted(e.key, e.link_strategy, e.env) for e in ref.versions])


def from_versions(keys: list[VersionKey]) -> list[Wanted]:
    """Explicit `--version` arguments: directory links, derived variable names; repeats are merged."""
    return check_request([Wanted(k) for k in dict.fromkeys(keys)])
