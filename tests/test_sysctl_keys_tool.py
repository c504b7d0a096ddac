"""tools/sysctl-keys' own logic, without booting: which modules are candidates (an ELF
symbol table read here), each module's modules.dep closure, and a key's owner (the module
that makes it with the fewest modules loaded)."""

from __future__ import annotations

import importlib.machinery
import importlib.util
import lzma
import struct
from pathlib import Path
from types import ModuleType

TOP = Path(__file__).resolve().parents[1]


def tool() -> ModuleType:
    loader = importlib.machinery.SourceFileLoader("sysctl_keys", str(TOP / "tools/sysctl-keys"))
    spec = importlib.util.spec_from_loader("sysctl_keys", loader)
    assert spec is not None
    m = importlib.util.module_from_spec(spec)
    loader.exec_module(m)
    return m


def elf(undefined: list[str]) -> bytes:
    """A minimal ELF64 object whose symbol table has these undefined symbols."""
    strtab = b"\0" + b"".join(s.encode() + b"\0" for s in undefined)
    symtab = b"\0" * 24
    at = 1
    for s in undefined:
        symtab += struct.pack("<IBBHQQ", at, 0x10, 0, 0, 0, 0)
        at += len(s) + 1
    header_size, sh_size = 64, 64
    data = bytearray(header_size)
    data[:6] = b"\x7fELF\x02\x01"
    sym_off = len(data)
    data += symtab
    str_off = len(data)
    data += strtab
    shoff = len(data)
    sections = [struct.pack("<IIQQQQIIQQ", 0, 0, 0, 0, 0, 0, 0, 0, 0, 0),
                struct.pack("<IIQQQQIIQQ", 0, 2, 0, 0, sym_off, len(symtab), 2, 1, 8, 24),
                struct.pack("<IIQQQQIIQQ", 0, 3, 0, 0, str_off, len(strtab), 0, 0, 1, 0)]
    data += b"".join(sections)
    struct.pack_into("<Q", data, 0x28, shoff)
    struct.pack_into("<HHH", data, 0x3A, sh_size, len(sections), 2)
    return bytes(data)


def test_candidates_are_net_modules_and_those_that_register_sysctls(tmp_path: Path) -> None:
    t = tool()
    k = tmp_path / "kernel"
    for path, syms in (("net/sctp/sctp.ko", ["kfree"]), ("fs/xfs/xfs.ko.xz", ["register_sysctl"]),
                       ("drivers/md/md-mod.ko", ["register_sysctl_table", "printk"]),
                       ("drivers/net/dummy.ko", ["rtnl_link_register"])):
        (k / path).parent.mkdir(parents=True, exist_ok=True)
        data = elf(syms)
        (k / path).write_bytes(lzma.compress(data) if path.endswith(".xz") else data)
    assert t.candidates(tmp_path) == ["md_mod", "sctp", "xfs"]
    assert t.undefined_symbols(elf(["a", "register_net_sysctl"])) == {"a", "register_net_sysctl"}


def test_a_key_belongs_to_the_module_that_makes_it_with_the_fewest_loaded(
        tmp_path: Path) -> None:
    t = tool()
    (tmp_path / "modules.dep").write_text(
        "kernel/net/netfilter/nf_conntrack.ko: kernel/lib/libcrc32c.ko\n"
        "kernel/net/netfilter/nf_nat.ko: kernel/net/netfilter/nf_conntrack.ko "
        "kernel/lib/libcrc32c.ko\nkernel/lib/libcrc32c.ko:\n")
    closure = t.closures(tmp_path)
    assert closure["nf_nat"] == {"nf_nat", "nf_conntrack", "libcrc32c"}
    made = {"nf_nat": ("loaded", ["net/netfilter/nf_conntrack_max"]),
            "nf_conntrack": ("loaded", ["net/netfilter/nf_conntrack_max"])}
    assert t.owners(made, closure) == {"net/netfilter/nf_conntrack_max": "nf_conntrack"}


def test_the_shipped_data_is_the_tool_s_own_output(tmp_path: Path) -> None:
    """Read back and written again, nftune/sysctldata.py comes out byte for byte: nobody
    edited it by hand, and a re-measure of one release keeps the others as they were."""
    t = tool()
    shipped = t.DATA.read_text()
    series = t.read_data()
    assert set(series) == {"5.10", "6.1", "6.12"}
    t.DATA = tmp_path / "sysctldata.py"
    t.write_data(series)
    assert t.DATA.read_text() == shipped
