from __future__ import annotations

from dscache.prepare.staging import STALE_AFTER, Owner, is_abandoned, parse_owner

NOW = 1_000_000.0


def test_parse_owner_reads_host_with_dots() -> None:
    assert parse_owner("0123abcd.node-1.example.com.4242.ab12cd") == Owner(
        "0123abcd", "node-1.example.com", 4242
    )
    assert parse_owner("garbage") is None
    assert parse_owner("tag.host.notapid.token") is None


def test_same_host_dead_pid_is_abandoned() -> None:
    owner = Owner("t", "n1", 99)
    assert is_abandoned(owner, NOW, now=NOW, host="n1", pid=7, owner_alive=False)
    assert not is_abandoned(owner, NOW, now=NOW, host="n1", pid=7, owner_alive=True)


def test_own_pid_from_an_earlier_container_run_is_abandoned() -> None:
    assert is_abandoned(Owner("t", "n1", 7), NOW, now=NOW, host="n1", pid=7, owner_alive=True)


def test_other_hosts_are_judged_by_heartbeat_only() -> None:
    fresh, stale = NOW - 1, NOW - STALE_AFTER - 1
    assert not is_abandoned(Owner("t", "other", 99), fresh, now=NOW, host="n1", pid=7, owner_alive=False)
    assert is_abandoned(Owner("t", "other", 99), stale, now=NOW, host="n1", pid=7, owner_alive=True)


def test_unknown_names_are_abandoned() -> None:
    assert is_abandoned(None, NOW, now=NOW, host="n1", pid=7, owner_alive=True)
