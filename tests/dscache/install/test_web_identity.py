"""Cloud identity without a Secret: `dscache install` from S3 with only a web-identity token.

What an installer pod under an IRSA-annotated ServiceAccount gets (AWS_ROLE_ARN and
AWS_WEB_IDENTITY_TOKEN_FILE, the projected token of the account): boto3's web-identity provider
exchanges the token at STS (moto's server, named by AWS_ENDPOINT_URL_STS as botocore honours it) for
temporary credentials, and S3 requests are signed with those. moto's S3 does not check signatures, so
the test asserts what S3 saw: every request signed with the access key STS issued for that role.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

from dscache.api.names import VersionKey
from dscache.store.paths import CachePaths
from tests.conftest import S3Env
from tests.dscache.install.test_install_remotes import TREE, manifest, upload_dir
from tests.factories import dataset_snapshot, make_tree, publish_archives, tree_snapshot

KEY = VersionKey("objects", "thor", "v1")
REPO = Path(__file__).resolve().parents[3]
# A service-account token as the kubelet projects it (a JWT; moto's STS does not verify it).
TOKEN = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzeXN0ZW06c2VydmljZWFjY291bnQ6bWw6czMtcmVhZGVyIn0.c2lnbmF0dXJl"


def sts_issued(role: str) -> dict[str, str]:
    """Access key id -> secret of the credentials moto's STS issued for `role` (its server runs in a
    thread of this process, so its state is read directly: /moto-api/data.json fails on other objects
    the session's tests leave behind)."""
    from moto.sts.models import sts_backends

    return {
        r.access_key_id: r.secret_access_key
        for regions in sts_backends.values()
        for backend in regions.values()
        for r in backend.assumed_roles
        if r.role_arn == role
    }


def test_install_from_s3_with_only_a_web_identity_token(tmp_path: Path, s3: S3Env) -> None:
    tree = make_tree(tmp_path / "tree", TREE)
    publish_archives(tree, tmp_path / "remote", KEY, archive_size=2048)
    upload_dir(s3, tmp_path / "remote", "wi")
    token = tmp_path / "serviceaccount" / "token"
    token.parent.mkdir()
    token.write_text(TOKEN)
    role = f"arn:aws:iam::123456789012:role/dscache-{uuid.uuid4().hex[:8]}"
    env = {
        "PATH": os.environ["PATH"],
        "PYTHONPATH": os.pathsep.join(p for p in sys.path if p),
        "HOME": str(tmp_path),
        "AWS_ROLE_ARN": role,
        "AWS_WEB_IDENTITY_TOKEN_FILE": str(token),
        "AWS_ENDPOINT_URL_STS": s3.server.direct_endpoint,
        "AWS_REGION": "us-east-1",
    }
    source = f'{{s3: {{bucket: {s3.bucket}, prefix: wi, endpoint: "{s3.endpoint}"}}}}'
    cache = tmp_path / "cache"
    args = ["install", "-f", str(manifest(tmp_path, source)), "--cache", str(cache)]

    def install(environment: dict[str, str]) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "dscache", *args],
            check=False,
            env=environment,
            capture_output=True,
            text=True,
            timeout=120,
            cwd=REPO,
        )

    # Half a web identity (the token but no role): one line saying so, not a crash.
    without_role = install({k: v for k, v in env.items() if k != "AWS_ROLE_ARN"})
    assert without_role.returncode == 1
    assert without_role.stderr.startswith(
        f"dscache: error: s3://{s3.bucket}/wi: the AWS credential configuration is unusable: The provided "
        "profile or the current environment is configured to assume role with web identity but has no "
        "role ARN configured."
    ), without_role.stderr
    assert len(without_role.stderr.splitlines()) == 1 and "Traceback" not in without_role.stderr
    s3.server.log.clear()
    done = install(env)
    assert done.returncode == 0, done.stderr
    assert dataset_snapshot(CachePaths(cache).version_dir(KEY)) == tree_snapshot(tree)

    # Each process of the install (and each worker) exchanges the token once: one role, STS's keys.
    issued = sts_issued(role)
    requests = s3.server.log.all()
    assert requests and all("authorization" in r.headers for r in requests)
    signed = {r.headers["authorization"].split("Credential=")[1].split("/")[0] for r in requests}
    assert signed and signed <= issued.keys()  # every S3 request used web-identity credentials
    assert all(key.startswith("ASIA") for key in issued)  # temporary ones, not static test keys
    for text in (done.stdout, done.stderr):
        assert TOKEN not in text and not any(secret in text for secret in issued.values())
