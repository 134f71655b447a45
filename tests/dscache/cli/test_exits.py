"""One mapping from errors to the documented exit codes: 0 ok, 1 failure, 2 usage, 3 timed out, 130."""

from __future__ import annotations

import pytest

from dscache.api.envnames import EnvNameError
from dscache.api.names import NameError_
from dscache.api.spec import SpecError
from dscache.cli.exits import exit_code
from dscache.errors import DscacheError
from dscache.install.extracted import ArchiveRejectedError
from dscache.install.pipeline import InstallError
from dscache.layouts.plan import LayoutError
from dscache.prepare.request import RequestError
from dscache.prepare.run import PrepareTimeoutError
from dscache.publish.pack import BadInputError, PublishError
from dscache.remotes.base import NotFoundError, RemoteError
from dscache.store.lock import LockTimeoutError


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (SpecError("spec.versions: required"), 2),
        (NameError_("--ref: '..' is not a safe name"), 2),
        (RequestError("objects/thor is requested at two versions"), 2),
        (EnvNameError("objects/thor: '1X' is not a valid environment variable name"), 2),
        (BadInputError("tree/a: is a device"), 2),
        (PrepareTimeoutError("timed out after 5s"), 3),
        (InstallError("not enough free space"), 1),
        (RemoteError("s3://b/p: access denied (HTTP 403)"), 1),
        (NotFoundError("s3://b/p/x: not found"), 1),
        (LockTimeoutError("held by host 1"), 1),
        (LayoutError("manifest: not valid JSON"), 1),
        (ArchiveRejectedError("a.tar.zst", "../x", "path contains '..'"), 1),
        (PublishError("upload failed"), 1),
        (OSError(28, "No space left on device"), 1),
        (KeyboardInterrupt(), 130),
    ],
)
def test_exit_code_by_kind_of_error(error: BaseException, code: int) -> None:
    assert exit_code(error) == code


def test_every_dscache_error_is_safe_to_show_and_usage_errors_stay_value_errors() -> None:
    for kind in (SpecError, NameError_, RequestError, EnvNameError, BadInputError):
        assert issubclass(kind, DscacheError) and issubclass(kind, ValueError)
    for kind in (
        InstallError,
        RemoteError,
        LockTimeoutError,
        LayoutError,
        ArchiveRejectedError,
        PublishError,
    ):
        assert issubclass(kind, DscacheError)
