"""Bad URLs, endpoints and names in a spec: one line in words naming the field, never a regex or a
library's exception (h6-input, findings 1, 2 and 6a)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from dscache.api import spec
from dscache.api.manifest import load_manifest, source_from_arg
from dscache.api.spec import DatasetCacheSpec, SpecError, parse_spec

ROOT = Path(__file__).resolve().parents[3]
VERSIONS = [{"dataType": "objects", "source": "thor", "version": "v1"}]


def _refusal(source: dict[str, object]) -> str:
    with pytest.raises(SpecError) as caught:
        parse_spec({"source": source, "versions": VERSIONS})
    return str(caught.value)


@pytest.mark.parametrize(
    ("source", "field"),
    [
        ({"s3": {"bucket": "b-1", "endpoint": "https://ACCOUNT_ID.r2.cloudflarestorage.com"}}, "s3.endpoint"),
        ({"s3": {"bucket": "b-1", "endpoint": "notaurl"}}, "s3.endpoint"),
        ({"gcs": {"bucket": "b", "endpoint": "http://[::1"}}, "gcs.endpoint"),
        (
            {"azure": {"account": "acct", "container": "data", "endpoint": "http://h:port/x"}},
            "azure.endpoint",
        ),
        ({"huggingFace": {"repo": "o/r", "endpoint": "https://bad host"}}, "huggingFace.endpoint"),
        ({"http": {"url": "https://[::1"}}, "http.url"),
    ],
)
def test_an_unusable_endpoint_is_refused_by_the_shared_model_naming_its_field(
    source: dict[str, object], field: str
) -> None:
    message = _refusal(source)
    assert message.startswith(f"spec.source.{field}: ")
    assert "\n" not in message and "Invalid" not in message  # words, not urllib's or botocore's


def test_the_placeholder_endpoint_says_which_host_is_wrong() -> None:
    message = _refusal({"s3": {"bucket": "b-1", "endpoint": "https://ACCOUNT_ID.r2.cloudflarestorage.com"}})
    assert "host 'ACCOUNT_ID.r2.cloudflarestorage.com' is not a host name" in message


def test_an_s3_bucket_name_is_checked_by_s3s_rules_up_front() -> None:
    message = _refusal({"s3": {"bucket": "Bad_Bucket!"}})
    assert message.startswith(
        "spec.source.s3.bucket: 'Bad_Bucket!' is not an S3 bucket name ('!' not allowed)"
    )
    assert "3-63 characters" in message


def test_legacy_and_plain_bucket_names_pass() -> None:
    for bucket in ("my-datasets", "a.b.c", "Legacy_Bucket", "b"):
        assert parse_spec({"source": {"s3": {"bucket": bucket}}, "versions": VERSIONS}).source.s3 is not None


@pytest.mark.parametrize(
    ("arg", "expected"),
    [
        (
            "https://[::1",
            "--source 'https://[::1': not a URL: its host is not a valid bracketed IPv6 address",
        ),
        (
            "s3://Bad_Bucket!/x",
            "--source 's3://Bad_Bucket!/x': bucket: 'Bad_Bucket!' is not an S3 bucket name",
        ),
        ("https://u:secret@[::1/x", "--source 'https://***@[::1/x': not a URL"),
    ],
)
def test_a_bad_source_argument_is_one_line_naming_it(arg: str, expected: str) -> None:
    with pytest.raises(SpecError) as caught:
        source_from_arg(arg)
    assert str(caught.value).startswith(expected)
    assert "secret" not in str(caught.value)


def test_a_relative_path_is_refused_in_words_not_a_regex() -> None:
    message = _refusal({"file": {"path": "rel/dir"}})
    assert message == (
        "spec.source.file.path: 'rel/dir' must be an absolute path (starting with '/'), e.g. /data/remote"
    )


def test_every_pattern_of_the_spec_schema_has_words() -> None:
    schema = json.dumps(DatasetCacheSpec.model_json_schema())
    patterns = {json.loads(p) for p in re.findall(r'"pattern": ("(?:[^"\\]|\\.)*")', schema)}
    words = getattr(spec, "PATTERN_WORDS", {})
    assert patterns and patterns <= set(words), patterns - set(words)


def test_no_pattern_error_shows_a_regex() -> None:
    message = _refusal({"azure": {"account": "Not_Valid", "container": "-x"}})
    assert "pattern" not in message and "^" not in message
    assert "spec.source.azure.account: 'Not_Valid' must be 3-24 lowercase ASCII letters and digits" in message


def test_the_shipped_s3_example_validates_and_says_what_to_replace() -> None:
    path = ROOT / "examples" / "datasetcache-s3.yaml"
    load_manifest(path)
    assert "YOUR-ACCOUNT-ID" in path.read_text() and "Placeholders to replace" in path.read_text()


def test_a_bound_says_the_value_given() -> None:
    with pytest.raises(SpecError) as caught:
        parse_spec({"source": {"file": {"path": "/r"}}, "versions": VERSIONS, "install": {"parallelism": 0}})
    assert str(caught.value) == "spec.install.parallelism: Input should be greater than or equal to 1 (got 0)"
