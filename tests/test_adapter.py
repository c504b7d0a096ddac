"""The pystemd adapter's way in (nftune/systemd.py): pystemd's Cython bus without its
package __init__, and a clean error when pystemd cannot be loaded."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

TOP = str(Path(__file__).resolve().parents[1])
ENTER = """
import sys
from nftune.errors import NftuneError
from nftune.systemd import Systemd
try:
    with Systemd("unix:path=/nonexistent/bus"):
        pass
except NftuneError as e:
    print("error:", e, "| hint:", e.hint)
print("lxml" in sys.modules, "psutil" in sys.modules, "pystemd" in sys.modules)
"""


def enter(tmp_path: Path, pythonpath: list[str]) -> list[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([*pythonpath, TOP])}
    out = subprocess.run([sys.executable, "-c", ENTER], capture_output=True, text=True,
                         env=env, cwd=tmp_path, timeout=60)
    assert "Traceback" not in out.stderr, out.stderr
    return out.stdout.splitlines()


def test_the_bus_without_pystemds_high_level_api(tmp_path: Path) -> None:
    error, loaded = enter(tmp_path, [])
    assert "cannot connect to systemd on unix:path=/nonexistent/bus" in error
    assert loaded == "False False True"  # neither lxml nor psutil


def test_a_pystemd_that_cannot_load_is_an_error_not_a_traceback(tmp_path: Path) -> None:
    broken = tmp_path / "site/pystemd"
    broken.mkdir(parents=True)
    (broken / "__init__.py").write_text("raise AssertionError('never run')\n")
    (broken / "dbuslib.py").write_text("raise ImportError('libsystemd.so.0: not found')\n")
    (broken / "dbusexc.py").write_text("")
    error, loaded = enter(tmp_path, [str(tmp_path / "site")])
    assert error.startswith("error: pystemd cannot be loaded: libsystemd.so.0: not found")
    assert "libsystemd.so.0 is installed" in error
    assert loaded == "False False False"  # the stand-in package is gone again
