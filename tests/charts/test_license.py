"""The Apache-2.0 license text ships at the repository root and inside the wheel."""

from __future__ import annotations

import hashlib
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.charts.chart import ROOT

# sha256 of the Apache License 2.0 text as published at https://www.apache.org/licenses/LICENSE-2.0.txt
# (identical to Debian's /usr/share/common-licenses/Apache-2.0).
APACHE_2_0_SHA256 = "cfc7749b96f63bd31c3c42b5c471bf756814053e847c10f3eb003417bc523d30"


def test_the_license_is_the_apache_2_0_text() -> None:
    text = (ROOT / "LICENSE").read_bytes()
    assert hashlib.sha256(text).hexdigest() == APACHE_2_0_SHA256
    assert "!LICENSE" in (ROOT / ".dockerignore").read_text().split()  # the image's wheel build needs it


@pytest.mark.slow
def test_the_wheel_carries_the_license(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--wheel-dir", str(tmp_path), str(ROOT)],
        capture_output=True,
        text=True,
        timeout=600,
        check=True,
    )
    [wheel] = tmp_path.glob("dscache-*.whl")
    with zipfile.ZipFile(wheel) as zf:
        [info] = [n for n in zf.namelist() if n.endswith(".dist-info/METADATA")]
        metadata = zf.read(info).decode()
        licensed = zf.read(info.replace("METADATA", "licenses/LICENSE"))
    assert "License-Expression: Apache-2.0" in metadata.splitlines()
    assert "License-File: LICENSE" in metadata.splitlines()
    assert hashlib.sha256(licensed).hexdigest() == APACHE_2_0_SHA256
