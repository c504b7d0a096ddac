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
