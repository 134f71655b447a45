"""Pure decisions of the installer: which remote paths can be a version's files, whether a partial
file belongs to the listed object, and what the transferred bytes prove."""

from __future__ import annotations

import pytest

from dscache.api.names import VersionKey
from dscache.install.digests import Hashes, Verdict, judge, next_step, wanted
from dscache.layouts.files import build_files_plan, file_and_directory
from dscache.layouts.plan import LayoutError
from dscache.remotes.base import Identity, Pin, RemoteFile

KEY = VersionKey("models", "bert", "v1")
WHERE = "hf://models/org/bert@main"


def test_a_file_that_is_also_a_directory_is_named_with_both_paths() -> None:
    listing = [RemoteFile("v1/page", 5), RemoteFile("v1/page/index.html", 9), RemoteFile("v1/a", 1)]
    with pytest.raises(LayoutError) as err:
        build_files_plan(KEY, listing, WHERE, "v1")
    assert str(err.value) == (
        "hf://models/org/bert@main/page is a file and also the directory of "
        "hf://models/org/bert@main/page/index.html: a version cannot hold both (rename or remove one of them)"
    )


def test_file_and_directory_finds_deep_and_sibling_cases() -> None:
    assert file_and_directory(["a/b", "a/b/c/d", "a/bc"]) == ("a/b", "a/b/c/d")
    assert file_and_directory(["a/b", "a/bc", "a/b.c"]) is None  # only names that share a prefix
    assert file_and_directory(["A/x", "a"]) is None  # case differences are legal on Linux


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("a//b", "has an empty, '.' or '..' segment"),
        ("./a", "has an empty, '.' or '..' segment"),
        ("a/..", "has an empty, '.' or '..' segment"),
        ("d/", "ends with '/'"),
        ("é" * 128, "has a segment longer than 255 bytes"),
        (".dscache-complete.json", "name reserved for dscache metadata"),
        ("a\\b", "unsafe remote path"),
    ],
)
def test_paths_that_cannot_be_files_are_refused(name: str, reason: str) -> None:
    with pytest.raises(LayoutError, match="rejected: " + reason.replace("(", r"\(")):
        build_files_plan(KEY, [RemoteFile("ok.txt", 1), RemoteFile(name, 1)], WHERE, "")


def test_listed_identity_travels_with_the_item() -> None:
    identity = Identity(size=3, etag='"e-2"', last_modified=1)
    plan = build_files_plan(
        KEY, [RemoteFile("v1/x", 3, identity=identity, checksums=("CRC32",))], WHERE, "v1"
    )
    (item,) = plan.items
    assert (item.identity, item.checksums) == (identity, ("CRC32",))


def test_same_object_needs_a_shared_validator_and_no_disagreement() -> None:
    listed = Identity(size=10, etag='"a-3"', last_modified=100)
    assert listed.same_object(Identity(size=10, etag='"a-3"', version_id="v7"))
    assert not listed.same_object(Identity(size=10, etag='"b-3"'))
    assert not listed.same_object(Identity(size=10))  # the size alone proves nothing
    assert not listed.same_object(Identity(size=11, etag='"a-3"'))
    assert Identity(content_id="c").same_object(Identity(content_id="c", etag='"cdn"'))


def test_pin_records_round_trip() -> None:
    pin = Pin(Identity(size=1, etag='"x"', version_id="v"), {"crc32": "0000abcd"}, {"md5": "ff" * 16})
    assert Pin.from_json(pin.to_json()) == pin


SHA = "a" * 64


@pytest.mark.parametrize(
    ("got", "pin", "expected"),
    [
        ({"sha256": SHA, "md5": "1" * 32}, Pin(checksums={"md5": "1" * 32}), Verdict()),
        (
            {"sha256": SHA, "md5": "2" * 32},
            Pin(checksums={"md5": "1" * 32}),
            Verdict(problem=f"md5 {'2' * 32} does not match the remote ETag {'1' * 32}"),
        ),
        (
            {"sha256": SHA, "crc32": "00000001"},
            Pin(checksums={"crc32": "00000002"}),
            Verdict(problem="crc32 00000001 does not match the remote stored checksum 00000002"),
        ),
        (
            {"sha256": SHA, "md5": "2" * 32},
            Pin(hints={"md5": "1" * 32}),
            Verdict(
                doubt=f"md5 {'2' * 32} differs from the remote ETag {'1' * 32} (which may not be an MD5)"
            ),
        ),
        (
            {"sha256": SHA, "md5": "2" * 32, "crc32": "00000002"},
            Pin(checksums={"crc32": "00000002"}, hints={"md5": "1" * 32}),
            Verdict(),  # a matching stored checksum shows the ETag is no MD5
        ),
        ({"sha256": SHA}, Pin(checksums={"crc64nvme": "0" * 16}), Verdict()),  # not computable: size only
        ({"sha256": SHA, "md5": "2" * 32}, None, Verdict()),  # digests off, or a range of a shard
    ],
    ids=["md5-ok", "md5-wrong", "crc32-wrong", "hint-only", "hint-overruled", "unknown-alg", "no-pin"],
)
def test_judge(got: dict[str, str], pin: Pin | None, expected: Verdict) -> None:
    assert judge(10, got, expected_size=10, sha256=None, pin=pin) == expected


def test_crc32c_is_computed_and_a_mismatch_names_the_strongest_digest_first() -> None:
    hashes = Hashes(["crc32c", "md5"])
    hashes.update(b"1234")
    hashes.update(b"56789")
    got = hashes.hexdigests()
    assert got["crc32c"] == "e3069283"  # CRC-32C's published check value for "123456789"
    assert got["md5"] == "25f9e794323b453885f5181f1b624d0b"
    wrong = Pin(checksums={"crc32c": "00000000", "md5": "0" * 32})
    assert judge(9, got, expected_size=9, sha256=None, pin=wrong) == Verdict(
        problem=f"md5 {got['md5']} does not match the remote ETag {'0' * 32}"
    )
    crc_only = Pin(checksums={"crc32c": "00000000"})  # a composite GCS object
    assert judge(9, got, expected_size=9, sha256=None, pin=crc_only) == Verdict(
        problem="crc32c e3069283 does not match the remote stored checksum 00000000"
    )


def test_judge_sizes_and_manifest_digests_come_first() -> None:
    assert judge(9, {"sha256": SHA}, expected_size=10, sha256=None, pin=None) == Verdict(
        problem="got 9 bytes, the remote lists 10"
    )
    assert judge(10, {"sha256": SHA}, expected_size=10, sha256="b" * 64, pin=Pin()) == Verdict(
        problem=f"sha256 {SHA} does not match the published {'b' * 64}"
    )


def test_a_doubt_is_settled_by_two_agreeing_downloads() -> None:
    doubted: list[str] = []
    doubt = Verdict(doubt="md5 differs")
    assert next_step(doubt, "s1", doubted, 1) == "retry"
    assert next_step(doubt, "s2", doubted, 2) == "retry"  # the first was a bad transfer, maybe
    assert next_step(doubt, "s2", doubted, 3) == "accept"
    assert next_step(doubt, "s9", [], 3) == "fail"
    assert next_step(Verdict(problem="bad"), "s1", [], 1) == "retry"
    assert next_step(Verdict(problem="bad"), "s1", [], 2) == "fail"


def test_times_count_only_where_no_etag_settles_it() -> None:
    listed = Identity(etag='"e"', last_modified=100)
    assert listed.conflict(Identity(etag='"e"', last_modified=101)) is None  # e.g. another CDN edge
    assert listed.conflict(Identity(last_modified=101)) == "last modified 100 -> 101"


def test_no_other_digest_is_computed_where_a_sha256_proves_the_bytes() -> None:
    vouched = Pin(Identity(size=1), {"md5": "1" * 32, "crc32": "0000abcd"}, {})
    assert wanted(vouched) == {"md5", "crc32"}
    assert wanted(vouched, "ab" * 32) == set()  # a manifest's or an LFS pointer's sha256
    assert wanted(Pin(Identity(size=1), {"sha256": "ab" * 32, "md5": "1" * 32})) == set()
    assert wanted(Pin(Identity(size=1), {}, {"md5": "1" * 32})) == {"md5"}
