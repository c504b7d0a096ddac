"""man/nftune.8 is generated from the CLI (tools/gen-man); a stale page fails here."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

TOP = Path(__file__).resolve().parents[1]


def test_man_page_is_current(tmp_path: Path) -> None:
    fresh = tmp_path / "nftune.8"
    subprocess.run([sys.executable, str(TOP / "tools/gen-man"), str(fresh)], check=True)
    assert fresh.read_text() == (TOP / "man/nftune.8").read_text(), \
        "man/nftune.8 is stale: run tools/gen-man"


def test_man_page_lists_every_verb_and_cause() -> None:
    from nftune.cli import VERBS
    from nftune.result import CAUSES

    text = (TOP / "man/nftune.8").read_text()
    for verb in VERBS:
        assert f".SS {verb}\n" in text
    for cause in CAUSES:
        assert f"\\fB{str(cause).replace('-', chr(92) + '-')}\\fR" in text
