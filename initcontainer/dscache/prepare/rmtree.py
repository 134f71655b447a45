"""Deleting trees, with `shutil` imported only when something is deleted (the warm path never is)."""

from __future__ import annotations

from pathlib import Path


def remove_tree(path: Path | str, ignore_errors: bool = False) -> None:
    import shutil

    shutil.rmtree(path, ignore_errors=ignore_errors)
