"""Open the remote a `Source` names. Imports each backend only when a remote of its kind is opened,
so code paths that never touch S3 or the Hub never pay for (or need) boto3 or huggingface_hub."""

from __future__ import annotations

import os

from dscache.api.spec import Source
from dscache.remotes.base import Remote
from dscache.remotes.retry import RetryPolicy


def open_remote(source: Source, policy: RetryPolicy | None = None, *, hf_token: str | None = None) -> Remote:
    """A ready remote for `source`. Credentials come from the environment (AWS_*, GOOGLE_*, AZURE_*,
    HF_TOKEN, DSCACHE_HTTP_*) unless given."""
    policy = policy or RetryPolicy.from_env()
    if source.s3 is not None:
        from dscache.remotes.s3 import S3Remote

        s3 = source.s3
        return S3Remote(
            s3.bucket,
            s3.prefix,
            endpoint=s3.endpoint,
            region=s3.region,
            anonymous=s3.anonymous,
            policy=policy,
        )
    if source.gcs is not None:
        from dscache.remotes.gcs import GcsRemote

        gcs = source.gcs
        return GcsRemote(
            gcs.bucket, gcs.prefix, endpoint=gcs.endpoint, anonymous=gcs.anonymous, policy=policy
        )
    if source.azure is not None:
        from dscache.remotes.azure import AzureRemote

        az = source.azure
        return AzureRemote(
            az.account, az.container, az.prefix, endpoint=az.endpoint, anonymous=az.anonymous, policy=policy
        )
    if source.hugging_face is not None:
        from dscache.remotes.hf import HfRemote

        hf = source.hugging_face
        return HfRemote(
            hf.repo,
            repo_type=hf.repo_type.lower(),
            revision=hf.revision,
            prefix=hf.prefix,
            endpoint=hf.endpoint,
            token=hf_token,
            policy=policy,
        )
    if source.http is not None:
        from dscache.remotes.http import HttpRemote, env_authorization

        return HttpRemote(source.http.url, policy, authorization=env_authorization(os.environ))
    assert source.file is not None
    from dscache.remotes.file import FileRemote

    return FileRemote(source.file.path)
