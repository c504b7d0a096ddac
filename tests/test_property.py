"""Property tests: no accepted configuration renders a file that systemd would read
differently from what nftune meant."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nftune.artifacts import Kind, Layer
from nftune.conffiles import read_lines
from nftune.config import Config, parse
from nftune.errors import NftuneError
from nftune.kernel import ModuleChoice, choose_strict
from nftune.render import Facts, render
from nftune.sysctl import normalize
from nftune.sysctl import parse as parse_sysctl_d

# Characters that matter to one of the parsers involved, plus ordinary ones.
TRICKY = "abz09_-./=*?[]#; \t\\'\"!@:+%\x00\x01\x0b\x1b\x7f\r\né"
text = st.text(alphabet=TRICKY, max_size=24)
one_line = st.text(alphabet=TRICKY.replace("\r", "").replace("\n", "").replace("\x00", ""),
                   max_size=24)
sane_key = st.lists(st.from_regex(r"[a-z0-9_][a-z0-9_.:-]{0,8}", fullmatch=True),
                    min_size=2, max_size=5).map("/".join)
key = st.one_of(sane_key, sane_key.map(lambda k: k.replace("/", ".")), one_line)
value = st.one_of(st.from_regex(r"[0-9]{1,6}( [0-9]{1,6})?", fullmatch=True), one_line)
module = st.one_of(st.from_regex(r"[a-z0-9_-]{1,12}", fullmatch=True), one_line)

FACTS = Facts("T", "/usr/lib/systemd/systemd-sysctl", ())


def config_text(sysctls: list[tuple[str, str]], modules: list[str]) -> str:
    lines = ["[Sysctl]"] + [f"{k}={v}" for k, v in sysctls]
    lines += ["[Modules]"] + [f"Load={m}" for m in modules]
    return "\n".join(lines) + "\n"


def try_parse(text: str) -> Config | None:
    try:
        return parse([("/etc/nftune/nftune.conf", text)])
    except NftuneError as e:
        assert e.exit_code == 2 and e.path and e.line and e.hint
        assert str(e).isprintable()
        return None


def check_rendering(cfg: Config) -> None:
    choices = choose_strict(cfg.modules, [])
    files = {a.kind: a.content for a in render(cfg, choices, FACTS, Layer.ADMIN)}
    # sysctl.d, read the way systemd-sysctl reads it
    got = parse_sysctl_d(files[Kind.SYSCTL], "/x")
    assert [(a.key, a.value, a.ignore_failure) for a in got] == [
        (s.key, s.value, False) for s in cfg.sysctls]
    # modules-load.d, read the way systemd-modules-load reads it
    listed = [line for _, line in read_lines(files[Kind.MODULES_LOAD])]
    assert listed == [c.name for c in choices if isinstance(c, ModuleChoice) and c.listed]
    # every non-comment udev line is one of our rules, one per line
    if Kind.UDEV in files:
        for _, line in read_lines(files[Kind.UDEV]):
            assert line.startswith('ACTION=="add", SUBSYSTEM=="module", KERNEL=="')


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(key, value), max_size=6), st.lists(module, max_size=4))
def test_accepted_configs_render_what_was_meant(sysctls: list[tuple[str, str]],
                                                modules: list[str]) -> None:
    cfg = try_parse(config_text(sysctls, modules))
    if cfg is None:
        return
    check_rendering(cfg)
    # Nothing was silently rewritten: each accepted assignment means its own text. (Lines
    # that are comments, headers or continuations in any INI reader are left to the above.)
    if any(k.strip(" \t").startswith(("#", ";", "[")) or "=" in k or (k + v).endswith("\\")
           or "\\" in k + v for k, v in sysctls):
        return
    want: dict[str, str] = {"net/netfilter/nf_conntrack_tcp_be_liberal": "1"}
    for k, v in sysctls:
        nk = normalize(k.lstrip("/"))
        if v.strip(" \t"):
            want.pop(nk, None)
            want[nk] = v.strip(" \t")
        else:
            want.pop(nk, None)
    assert {s.key: s.value for s in cfg.sysctls} == want


@settings(max_examples=300)
@given(text)
def test_any_text_is_parsed_or_rejected_cleanly(raw: str) -> None:
    for wrapped in (raw, f"[Sysctl]\n{raw}", f"[Sysctl]\nnet.core.x={raw}",
                    f"[Modules]\nLoad={raw}", f"[Sysctl]\n{raw}=1"):
        cfg = try_parse(wrapped)
        if cfg is not None:
            check_rendering(cfg)
