"""The validating webhook refuses what the CLI refuses, through the shared spec model: unusable
endpoints and URLs, bad S3 bucket names, Files over plain HTTP (h6-input, findings 1, 2 and 4)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from dscache_operator.podpatch import Denied
from tests.dscache_operator.test_admission import admission, cache


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        (
            {"source": {"s3": {"bucket": "b", "endpoint": "https://ACCOUNT_ID.r2.cloudflarestorage.com"}}},
            "spec.source.s3.endpoint: 'https://ACCOUNT_ID.r2.cloudflarestorage.com' is not a usable URL",
        ),
        (
            {"source": {"gcs": {"bucket": "b", "endpoint": "http://[::1"}}},
            "spec.source.gcs.endpoint: 'http://[::1' is not a usable URL: its host is not a valid bracketed",
        ),
        (
            {"source": {"s3": {"bucket": "Bad_Bucket!"}}},
            "spec.source.s3.bucket: 'Bad_Bucket!' is not an S3 bucket name ('!' not allowed)",
        ),
        (
            {"source": {"http": {"url": "https://data.example.com/r"}}, "layout": "Files"},
            "spec.layout: Files with spec.source.http: plain http(s) cannot list a directory",
        ),
    ],
)
def test_the_webhook_denies_in_one_line_naming_the_field(spec: dict[str, Any], expected: str) -> None:
    new = cache(**spec)
    with pytest.raises(Denied) as caught:
        asyncio.run(admission().validate_cache(new, None))
    assert str(caught.value).startswith(expected) and "\n" not in str(caught.value)
