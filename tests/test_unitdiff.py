"""nftune's offline unit graph against systemd itself (tests/unitdiff.py): random unit trees
around the two units, each booted in a real systemd (nspawn on the release's cached root
filesystem), whose loaded graph decides; nftune's offline verdict must agree on every case.

Counts per release and the seed come from the environment (NFTUNE_UNITDIFF_CASES, e.g.
"bookworm=300,trixie=50"; NFTUNE_UNITDIFF_SEED); the seed defaults to one derived from the
checked-out commit, so each change explores new trees and a failure replays with
`python tests/unitdiff.py --suite S --seed N --only I`.
"""

from __future__ import annotations

import os
import shutil

import pytest
import unitdiff
from conftest import commit_seed, require
from nspawn import why_not

DEFAULT_CASES = {"bookworm": 100, "bullseye": 30, "trixie": 30}
ML = unitdiff.ML


require(why_not(), "NFTUNE_REQUIRE_NSPAWN", "unit-graph differential tests")


def cases() -> dict[str, int]:
    out = dict(DEFAULT_CASES)
    for item in filter(None, os.environ.get("NFTUNE_UNITDIFF_CASES", "").split(",")):
        suite, _, n = item.partition("=")
        out[suite.strip()] = int(n)
    return out


def seed() -> int:
    return commit_seed("NFTUNE_UNITDIFF_SEED")


@pytest.mark.parametrize("suite", list(DEFAULT_CASES))
def test_offline_verdict_agrees_with_systemd(suite: str,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    n = cases()[suite]
    report = unitdiff.run(suite, n, seed())
    with capsys.disabled():
        print(f"\n{report.summary}")
    assert not report.disagreements, "\n".join(report.disagreements)
    compared = n - report.tally.get("boot-died", 0) - report.tally.get("boot-stalled", 0)
    assert compared >= n * 0.8, f"only {compared} of {n} boots could be compared"
    # The work (ExecStart=, conditions) is compared on most boots too.
    assert report.work >= compared, report.summary
    # A generator that only ever made one kind of tree would prove little.
    kinds = {v for v in report.tally if not v.startswith("boot-")}
    assert {"ok", "ordering-cycle"} <= kinds and len(kinds) >= (3 if n >= 100 else 2), \
        report.tally


def test_the_differential_catches_a_model_without_default_dependencies(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The issue's tree, once booted: with default dependencies the model agrees with
    systemd (a cycle); without them it would say ok, and the harness says they disagree."""
    import nftune.unitgraph

    base = unitdiff.rootfs("bookworm")
    case = unitdiff.Case(0, 0, {
        f"{unitdiff.ETC}/some-agent.service": unitdiff.unit_text([]),
        f"{unitdiff.ETC}/multi-user.target.wants/some-agent.service":
            unitdiff.Link(f"/{unitdiff.ETC}/some-agent.service"),
        f"{unitdiff.ETC}/{ML}.d/50-agent.conf": "[Unit]\nAfter=some-agent.service\n"})
    real = unitdiff.run_case(base, case, "bookworm")
    assert (real.systemd, real.nftune) == ("ordering-cycle", "ordering-cycle"), real.detail
    monkeypatch.setattr(nftune.unitgraph, "default_deps", lambda u, v: [])
    blind = unitdiff.run_case(base, case, "bookworm")
    assert blind.systemd == "ordering-cycle" and not blind.agree
    assert shutil.which("systemd-nspawn")
