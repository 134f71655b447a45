"""Command-line contract: usage errors exit 2 with a message, nothing is touched."""

from __future__ import annotations

import pytest

from tests.dscache.prepare.prepare_helpers import Dirs, run_cli


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--ref", "r", "--version", "a/b=c"], "not allowed with argument"),
        ([], "one of the arguments --ref --version is required"),
        (["--version", "objects=v1"], "must look like DATA_TYPE/SOURCE=VERSION"),
        (["--version", "objects/../x=v1"], "not a safe name"),
        (["--version", "objects/thor=v1", "--version", "objects/thor=v2"], "requested at two versions"),
        (["--version", "a/b=c", "--scratch-max-bytes", "lots"], "size 'lots'"),
    ],
)
def test_usage_errors_exit_2(dirs: Dirs, extra: list[str], message: str) -> None:
    result = run_cli(*dirs.args(*extra))
    assert result.code == 2
    assert message in result.err
    assert not dirs.links.exists()


def test_unreadable_cache_is_a_failure_not_a_hang(dirs: Dirs) -> None:
    version = dirs.cache / "objects" / "thor" / "v1"
    version.mkdir(parents=True)
    (version / ".dscache-complete.json").write_text("{not json")
    result = run_cli(*dirs.args("--version", "objects/thor=v1"))
    assert result.code == 1
    assert "unreadable completion record" in result.err
