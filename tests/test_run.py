from __future__ import annotations

import pytest

from nftune.errors import NftuneError
from nftune.run import run as real_run  # bound before the fixture blocks it


def test_run_returns_output_and_raises_with_the_last_stderr_line() -> None:
    assert real_run(["sh", "-c", "echo out"]).stdout == "out\n"
    with pytest.raises(NftuneError) as e:
        real_run(["sh", "-c", "echo one >&2; echo two >&2; exit 3"])
    assert e.value.exit_code == 3 and str(e.value).endswith("exited with 3: two")
    assert real_run(["sh", "-c", "exit 4"], check=False).returncode == 4


def test_missing_command_and_timeout() -> None:
    with pytest.raises(NftuneError, match="command not found"):
        real_run(["/nonexistent/nftune-test"])
    with pytest.raises(NftuneError, match="timed out"):
        real_run(["sleep", "5"], timeout=0.2)


def test_a_program_run_from_the_binary_gets_the_callers_library_path(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """PyInstaller's loader points LD_LIBRARY_PATH at the bundle's libraries; journalctl,
    modprobe and systemctl must see the caller's value (or none), as PyInstaller advises."""
    import sys

    monkeypatch.setattr(sys, "frozen", True, raising=False)
    monkeypatch.setenv("LD_LIBRARY_PATH", "/usr/lib/nftune/_internal")
    monkeypatch.delenv("LD_LIBRARY_PATH_ORIG", raising=False)
    show = ["sh", "-c", "echo \"${LD_LIBRARY_PATH-unset}:${LD_LIBRARY_PATH_ORIG-unset}\""]
    assert real_run(show).stdout == "unset:unset\n"
    monkeypatch.setenv("LD_LIBRARY_PATH_ORIG", "/opt/mine")
    assert real_run(show).stdout == "/opt/mine:unset\n"
    monkeypatch.delattr(sys, "frozen")  # from a venv: the environment as it is
    assert real_run(show).stdout == "/usr/lib/nftune/_internal:/opt/mine\n"
