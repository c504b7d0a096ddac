"""kube-proxy's settings from its flags and its KubeProxyConfiguration, as kube-proxy
reads them (cmd/kube-proxy, pkg/proxy/apis/config v1alpha1), bounded: PyYAML's Python
SafeLoader with flow nesting capped, no byte of a file in a message."""

from __future__ import annotations

import errno
import os
import re

from ..conntrack.size import KUBE_PROXY_MAX_PER_CORE, KUBE_PROXY_MIN
from ..errors import NftuneError
from ..root import Root
from ..text import cut
from .model import MODES, NAME, TIMEOUTS, Gone, Settings

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

MAX_CMDLINE = 64 << 10  # kube-proxy's flags take a few hundred bytes
# A KubeProxyConfiguration is 1 to 3 KiB. Brackets nested N deep cost PyYAML's Python
# loader N^2, and the worst 8 KiB measured (brackets 15 deep throughout, !!set) take
# about 57 ms: a cap on both keeps any file under 100 ms (bench/kubeproxy_parse.py).
MAX_CONFIG = 8 << 10
MAX_FLOW_DEPTH = 16
API_VERSION = "kubeproxy.config.k8s.io/v1alpha1"
KIND = "KubeProxyConfiguration"


def flag(argv: list[str], name: str) -> str | None:
    """The last value of --NAME (pflag: --name=value or --name value)."""
    value = None
    for i, word in enumerate(argv):
        if word.startswith(f"--{name}="):
            value = word.split("=", 1)[1]
        elif word == f"--{name}" and i + 1 < len(argv):
            value = argv[i + 1]
    return value


TRUE, FALSE = ("1", "t", "T", "TRUE", "true", "True"), ("0", "f", "F", "FALSE", "false", "False")


def _bool_flag(argv: list[str], name: str) -> bool:
    """pflag's bool: --name, or --name=VALUE with strconv.ParseBool's spellings."""
    value = False
    for word in argv:
        if word == f"--{name}":
            value = True
        elif word.startswith(f"--{name}="):
            text = word.split("=", 1)[1]
            if text not in TRUE + FALSE:
                raise NftuneError(f"--{name} is not true or false")
            value = text in TRUE
    return value


def _cpus(status: str) -> int:
    from ..cpus import parse_list

    m = re.search(r"^Cpus_allowed_list:\s*(\S*)", status, re.M)
    try:
        return len(parse_list(m.group(1))) if m else 0
    except ValueError:
        return 0


def _int32_flag(argv: list[str], name: str, default: int) -> int:
    """pflag's int32 (strconv.ParseInt with base 0: 0x, 0o, 0b and a leading 0)."""
    text = flag(argv, name)
    if text is None:
        return default
    try:
        value = int(text, 8) if re.fullmatch(r"0[0-7]+", text) else int(text, 0)
    except ValueError:
        value = -1
    if not 0 <= value < 1 << 31:
        raise NftuneError(f"--{name} is not a number from 0 to 2147483647")
    return value


_SPAN = re.compile(r"([0-9]*(?:\.[0-9]*)?)(ns|us|µs|μs|ms|s|m|h)")
MAX_DURATION = ((1 << 63) - 1) / 1e9  # Go's time.Duration: int64 nanoseconds
_UNIT = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ms": 1e-3, "s": 1, "m": 60,
         "h": 3600}


def duration(text: str) -> int | None:
    """Go's time.ParseDuration, in whole seconds as kube-proxy writes them; None when it
    is not one."""
    if text in ("0", "+0", "-0", ""):
        return 0 if text else None
    body = text.lstrip("+")
    if body.startswith("-") or len(body) > 64:
        return None
    total, pos = 0.0, 0
    while pos < len(body):
        m = _SPAN.match(body, pos)
        if m is None or m.group(1) in ("", "."):
            return None
        total += float(m.group(1)) * _UNIT[m.group(2)]
        pos = m.end()
    return int(total) if total < MAX_DURATION else None


def _timeout_flag(argv: list[str], name: str, default: int) -> int:
    text = flag(argv, name)
    if text is None:
        return default
    seconds = duration(text)
    if seconds is None:
        raise NftuneError(f"--{name} is not a duration like 24h0m0s")
    return seconds


def _from_flags(argv: list[str]) -> Settings:
    mode = flag(argv, "proxy-mode") or ""
    if mode not in ("", *MODES):
        raise NftuneError("--proxy-mode is not iptables, ipvs or nftables")
    timeouts = tuple((key, _timeout_flag(argv, flag_name, default))
                     for _, flag_name, key, default in TIMEOUTS)
    return Settings(mode or "iptables",
                    _int32_flag(argv, "conntrack-max-per-core", KUBE_PROXY_MAX_PER_CORE),
                    _int32_flag(argv, "conntrack-min", KUBE_PROXY_MIN),
                    _bool_flag(argv, "conntrack-tcp-be-liberal"),
                    tuple((k, v) for k, v in timeouts if v > 0))


def _from_file(root: Root, pid: int, proc: int, path: str) -> Settings:
    """The config file, read inside the process's own root: a regular file on a file
    system that stores files (never procfs, sysfs, tracefs, FUSE or a network file
    system, where a read can have effects or block), opened non-blocking, at most
    MAX_CONFIG bytes."""
    shown = f"{cut(path)} (in {NAME}[{pid}]'s root)"
    if not path.startswith("/"):
        # kube-proxy resolves it from its working directory, but ".." and absolute links
        # from its root: one directory descriptor cannot stand for both.
        raise NftuneError("a relative --config path: nftune reads only absolute ones",
                          path=shown)
    try:
        # On the host, the kernel resolves the magic link to the process's root; in a
        # test tree, the link is resolved inside the tree like any other.
        top = os.open("root", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC, dir_fd=proc) \
            if root.is_host else root.open(f"/proc/{pid}/root", os.O_PATH | os.O_DIRECTORY)
    except OSError as e:
        if e.errno == errno.ENOENT:  # procfs has no such entry once the process has gone
            raise Gone from None
        raise NftuneError(f"cannot open its root: {e.strerror}", path=shown) from None
    try:
        theirs = Root(f"/proc/self/fd/{top}")
        with theirs.reader(path, storage_only=True) as f:
            if f is None:
                raise NftuneError("no such file", path=shown)
            data = f.read(MAX_CONFIG + 1)
    except NftuneError as e:
        e.path = shown
        raise
    except OSError as e:
        raise NftuneError(f"cannot read: {e.strerror}", path=shown) from None
    finally:
        os.close(top)
    if data is None:  # a non-blocking read that would block: not a file that stores data
        raise NftuneError("a read would block", path=shown)
    if len(data) > MAX_CONFIG:
        raise NftuneError(f"larger than {MAX_CONFIG} bytes (a KubeProxyConfiguration is a "
                          "few KiB)", path=shown)
    return settings(parse_document(data, shown), shown)


def _what(value: object) -> str:
    """What a value of the document is, never what it says: the file may be anything."""
    if isinstance(value, bool):
        return "true or false"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, int | float):
        return "a number"
    if value is None:
        return "null"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return "another type"


def settings(doc: dict[str, Any], shown: str) -> Settings:
    """The mode and conntrack settings of a KubeProxyConfiguration, with kube-proxy's
    defaults for what it leaves out."""
    conntrack = doc.get("conntrack")
    if conntrack is None:
        conntrack = {}
    if not isinstance(conntrack, dict):
        raise NftuneError(f"conntrack is {_what(conntrack)}, not a mapping", path=shown,
                          key="conntrack")
    mode = doc.get("mode") or ""
    if not isinstance(mode, str) or mode not in ("", *MODES):
        raise NftuneError("mode is not iptables, ipvs or nftables", path=shown, key="mode")
    timeouts = []
    for field, _, key, default in TIMEOUTS:
        value = conntrack.get(field)
        seconds = default if value is None else duration(value) \
            if isinstance(value, str) else None
        if seconds is None:
            raise NftuneError(f"conntrack.{field} is {_what(value)}, not a duration like "
                              "24h0m0s", path=shown, key=f"conntrack.{field}")
        if seconds > 0:
            timeouts.append((key, seconds))
    return Settings(mode or "iptables",
                    _int32(conntrack, "maxPerCore", KUBE_PROXY_MAX_PER_CORE, shown),
                    _int32(conntrack, "min", KUBE_PROXY_MIN, shown),
                    _boolean(conntrack, "tcpBeLiberal", shown), tuple(timeouts))


# What went wrong in PyYAML's loader, by its error's class: the message itself quotes the
# document (a token, a tag), so it is never shown.
_YAML_ERRORS = {"ReaderError": "not text YAML allows", "ScannerError": "not valid YAML",
                "ParserError": "not valid YAML", "ComposerError": "not valid YAML",
                "ConstructorError": "a tag or value nftune does not accept",
                "TooDeep": f"brackets nested more than {MAX_FLOW_DEPTH} deep"}


def parse_document(data: bytes, shown: str) -> dict[str, Any]:
    """A KubeProxyConfiguration in YAML (or JSON, which YAML reads too), with PyYAML's safe
    loader: plain data, no tags that construct objects. Whatever the loader raises on
    whatever the file holds is an NftuneError that says what kind of problem and where,
    never what the file says."""
    try:
        loader = _loader()(data)
        try:
            doc = loader.get_single_data()
        finally:
            loader.dispose()
    except RecursionError:
        raise NftuneError("nested too deeply", path=shown) from None
    except MemoryError:
        raise NftuneError("too large to read", path=shown) from None
    except Exception as e:  # any input may raise anything in the loader
        what = _YAML_ERRORS.get(type(e).__name__, "a value nftune does not accept")
        mark = getattr(e, "problem_mark", None) or getattr(e, "context_mark", None)
        line, column = getattr(mark, "line", None), getattr(mark, "column", None)
        where = f" (line {line + 1}, column {column + 1})" \
            if isinstance(line, int) and isinstance(column, int) else ""
        raise NftuneError(f"{what}{where}", path=shown) from None
    if not isinstance(doc, dict):
        raise NftuneError(f"not a KubeProxyConfiguration ({_what(doc)}, not a mapping)",
                          path=shown)
    if doc.get("kind") != KIND:
        raise NftuneError(f"kind is not {KIND}", path=shown, key="kind")
    return doc


_LOADER: Any = None


def _loader() -> Any:
    """PyYAML's Python SafeLoader (the C one is not bundled, and is not used in a venv
    either, so both behave alike), refusing flow collections nested past
    MAX_FLOW_DEPTH: each level makes every later token cost more (N^2)."""
    global _LOADER
    if _LOADER is None:
        import yaml

        class TooDeep(yaml.YAMLError):
            pass

        class Loader(yaml.SafeLoader):
            def fetch_flow_collection_start(self, token: Any) -> None:
                if self.flow_level >= MAX_FLOW_DEPTH:
                    raise TooDeep()
                super().fetch_flow_collection_start(token)

        _LOADER = Loader
    return _LOADER


def _int32(section: dict[str, Any], key: str, default: int, shown: str) -> int:
    value = section.get(key)
    if value is None:
        return default
    if type(value) is not int or not 0 <= value < 1 << 31:
        raise NftuneError(f"conntrack.{key} is {_what(value)}, not a number from 0 to "
                          "2147483647", path=shown, key=f"conntrack.{key}")
    return value


def _boolean(section: dict[str, Any], key: str, shown: str) -> bool:
    value = section.get(key, False)
    if value is None:
        return False
    if type(value) is not bool:
        raise NftuneError(f"conntrack.{key} is {_what(value)}, not true or false",
                          path=shown, key=f"conntrack.{key}")
    return value
