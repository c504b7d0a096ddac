"""The README follows the program: its generated parts are current (tools/gen-readme), the
module map (docs/development.md) lists exactly the modules in nftune/, its examples run and
its configuration blocks parse, every shell block is run by something named here, and every
link to docs/ leads to a file there."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from conftest import add_kernel

TOP = Path(__file__).resolve().parents[1]
README = TOP / "README.md"


def test_readme_generated_parts_are_current(tmp_path: Path) -> None:
    fresh = tmp_path / "README.md"
    fresh.write_text(README.read_text())
    subprocess.run([sys.executable, str(TOP / "tools/gen-readme"), str(fresh)], check=True)
    assert fresh.read_text() == README.read_text(), "README.md is stale: run tools/gen-readme"


def module_map() -> dict[str, str]:
    text = (TOP / "docs/development.md").read_text()
    section = text[text.index("\n## Module map\n"):]
    section = section[:section.index("\n## ", 1)]
    return dict(re.findall(r"(?m)^- `(nftune/[\w/]+\.py)`: (.+)$", section))


def test_module_map_matches_the_tree() -> None:
    tree = {str(p.relative_to(TOP)) for p in (TOP / "nftune").rglob("*.py")}
    listed = module_map()
    assert sorted(tree - listed.keys()) == [], "modules missing from the README's map"
    assert sorted(listed.keys() - tree) == [], "the README's map names modules that are gone"


def test_each_module_has_one_line_of_job() -> None:
    for module, job in module_map().items():
        assert job.endswith(".") and len(job) < 120, (module, job)


def example(name: str) -> list[tuple[str, list[str]]]:
    """The README's example `name`: each `$ ` command with the output lines under it."""
    text = README.read_text()
    start = text.index(f"<!-- example: {name} ")
    block = text[text.index("```console\n", start) + 11:]
    block = block[:block.index("```\n")]
    steps: list[tuple[str, list[str]]] = []
    for line in block.splitlines():
        if line.startswith("$ "):
            steps.append((line[2:], []))
        else:
            steps[-1][1].append(line)
    return steps


def test_the_node_sysctl_example_runs_as_written(tmp_path: Path) -> None:
    """Each command of the example, run on an image with nftune applied, a 6.1 kernel and
    kubeadm's k8s.conf (what `cat` shows), prints exactly what the README says."""
    image = tmp_path / "image"
    add_kernel(image, "6.1.0-57-amd64", ("nf_conntrack", "br_netfilter", "ip_vs"))
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "nftune").write_text(f'#!/bin/sh\nexec {sys.executable} -m nftune "$@"\n')
    (bin_dir / "nftune").chmod(0o755)
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "PYTHONPATH": str(TOP), "LC_ALL": "C.UTF-8"}
    subprocess.run(["nftune", "apply", "--root", str(image)], env=env, check=True,
                   capture_output=True)
    steps = example("node-sysctl")
    cat, shown = steps[0]
    assert cat == "cat /srv/image/etc/sysctl.d/k8s.conf"
    (image / "etc/sysctl.d").mkdir(parents=True, exist_ok=True)
    (image / "etc/sysctl.d/k8s.conf").write_text("".join(f"{x}\n" for x in shown))
    for command, expected in steps:
        p = subprocess.run(["sh", "-c", command.replace("/srv/image", str(image))], env=env,
                           capture_output=True, text=True, cwd=tmp_path)
        assert "Traceback" not in p.stderr, p.stderr
        assert p.stdout.replace(str(image), "/srv/image").splitlines() == expected, command


def test_the_sysctl_data_table_is_the_shipped_data() -> None:
    """Each row of docs/proof.md's table of measured kernels, counted from
    nftune/sysctldata.py."""
    from nftune.sysctldata import KERNELS, KEYS, MODULES

    text = (TOP / "docs/proof.md").read_text()
    rows = {m[0]: m[1:] for m in re.findall(
        r"(?m)^\| (\S+) \(\w+\) \| (\d+) \| (\d+) \| (\d+) \| (\d+) of (\d+) \((\d+), (\d+)\) \|$",
        text)}
    assert set(rows) == {kernel for _, kernel in KERNELS}
    for i, (_, kernel) in enumerate(KERNELS):
        how = [h[i] for h in MODULES.values() if h[i]]
        assert rows[kernel] == tuple(str(n) for n in (
            sum(v[i] == "" for v in KEYS.values()), sum(bool(v[i]) for v in KEYS.values()),
            len({v[i] for v in KEYS.values() if v[i]}), how.count("loaded"), len(how),
            how.count("failed"), how.count("stuck"))), kernel


def test_every_ini_block_of_the_readme_is_a_valid_configuration(tmp_path: Path) -> None:
    """Pasted as it stands into /etc/nftune/nftune.conf, each `ini` block is accepted by
    `nftune config` (exit 0), and says what it sets."""
    blocks = re.findall(r"(?ms)^```ini\n(.*?)^```$", README.read_text())
    assert blocks
    for block in blocks:
        (tmp_path / "etc/nftune").mkdir(parents=True, exist_ok=True)
        (tmp_path / "etc/nftune/nftune.conf").write_text(block)
        p = subprocess.run([sys.executable, "-m", "nftune", "config", "--root", str(tmp_path)],
                           capture_output=True, text=True, cwd=TOP, check=False)
        assert p.returncode == 0, (block, p.stderr)
        assert "/etc/nftune/nftune.conf:" in p.stdout


def test_every_link_to_docs_leads_to_a_file() -> None:
    text = README.read_text()
    links = re.findall(r"\]\((docs/[^)#]+)", text)
    assert {"docs/security.md", "docs/proof.md", "docs/development.md",
            "docs/performance.md"} <= set(links)
    for link in links:
        assert (TOP / link).is_file(), link
    for doc in (TOP / "docs").glob("*.md"):
        for link in re.findall(r"\]\(([a-z-]+\.md)", doc.read_text()):
            assert (TOP / "docs" / link).is_file(), (doc.name, link)


# Every shell block of the README and docs/ (by its first line), and what runs it: a script
# of the suite that runs each command as written, or a test function that reads the block
# (block("first line")) and runs or matches what can run here. A line nothing runs as
# written says why, in NOT_RUN.
RUN_BY = {
    "bash tools/demo": "tests/run",
    "bash tests/run": ".ci/run",
    "make deb rpm": "tests/run",
    "apt install ./nftune_*.deb": "e2e/scenarios.py",
    "cp nftune_*.deb /mnt/image/tmp/ && chroot /mnt/image sh -c 'apt-get install -y "
    "/tmp/nftune_*.deb'": "tests/test_packages.py::test_the_readme_image_build_runs_as_written",
    "/mnt/image/usr/lib/nftune/nftune verify --root /mnt/image":
        "tests/test_packages.py::test_the_readme_image_build_runs_as_written",
    "skipped: kube-proxy kube-proxy [untrusted]: 3 processes named kube-proxy ignored, as "
    "none could itself write what it would claim: exited: 1 (PID 912); no CAP_NET_ADMIN: 2 "
    "(PIDs 977, 978)":
        "tests/test_hostile_processes.py::test_pods_cannot_lie_to_the_kube_proxy_check",
    ".venv/bin/python tools/sysctl-keys": "tests/test_docs.py::test_the_sysctl_keys_tool_runs",
    "# nftune verify": "tests/test_packages.py::test_installed_deb_boots_and_verifies_itself",
    "NOT proven [ordering-cycle]: ordering cycle: systemd-sysctl.service < sysinit.target < "
    "some-agent.service < systemd-modules-load.service < systemd-sysctl.service (…)":
        "tests/test_docs.py::test_the_proof_docs_cycle_example_is_what_chain_prints",
    "failed: module-insert nf_conntrack [blacklisted]: blacklisted by "
    "/srv/image/etc/modprobe.d/50-hardening.conf:2: systemd-modules-load probes with the "
    "blacklist applied and skips it":
        "tests/checks/test_work.py::test_the_docs_example_is_what_verify_prints",
}
# What cannot run here, line by line, and why.
NOT_RUN = {
    ".venv/bin/python tools/sysctl-keys": "it boots three kernels, 2 to 5 minutes each: "
    "test_the_sysctl_keys_tool_runs starts it (--help), and CI re-measures a sample of its "
    "data in the e2e rst boots",
    "dnf install ./nftune-*.rpm": "no EL root here (only Debian's archives are reachable); "
    "the .rpm's scriptlets run with rpm --root in test_rpm_lifecycle",
    "rpm --root=/mnt/image -i nftune-*.rpm": "the test root is Debian's, whose empty rpm "
    "database lacks systemd: test_rpm_lifecycle adds --nodeps and --dbpath to this command",
}


def test_every_shell_block_of_the_readme_is_run_by_a_test() -> None:
    """Each block is listed above, and what runs it holds its commands: a script holds each
    line as written, a test function exists and reads the README's block."""
    import ast

    from readme import command, every_block

    blocks = [b for _, b in every_block()]
    assert {command(b[0]) for b in blocks} == set(RUN_BY), "a shell block nothing runs"
    lines = {command(line) for b in blocks for line in b}
    assert set(NOT_RUN) <= lines, "NOT_RUN names a line the README no longer has"
    for b in blocks:
        where = RUN_BY[command(b[0])]
        path, _, function = where.partition("::")
        source = (TOP / path).read_text()
        if not function:  # a script: a line of it, not a comment, runs the command
            code = [command(x) for x in source.splitlines() if not x.lstrip().startswith("#")]
            for line in b:
                if command(line) not in NOT_RUN:
                    whole = re.compile(rf"(^|[\s;&|(]){re.escape(command(line))}($|[\s;&|)>])")
                    assert any(whole.search(x) for x in code), (where, line)
            continue
        [node] = [n for n in ast.walk(ast.parse(source))
                  if isinstance(n, ast.FunctionDef) and n.name == function]
        reads = [c.args[0].value for c in ast.walk(node) if isinstance(c, ast.Call)
                 and isinstance(c.func, ast.Name) and c.func.id == "block" and c.args
                 and isinstance(c.args[0], ast.Constant)]
        assert b[0] in reads, (where, "does not read this block: block(first line)")


def test_the_sysctl_keys_tool_runs() -> None:
    """The command as the README gives it (from the checkout) starts and knows its job; a
    whole measurement boots three kernels (2 to 5 minutes each), so CI re-measures a sample
    in the e2e `rst` boots instead (NFTUNE_SYSCTL_SAMPLE)."""
    from readme import block

    [line] = block(".venv/bin/python tools/sysctl-keys")
    argv = line.split()
    assert argv[1] == "tools/sysctl-keys"
    p = subprocess.run([sys.executable, argv[1], "--help"], capture_output=True, text=True,
                       cwd=TOP, check=False)
    assert p.returncode == 0 and "usage:" in p.stdout, p.stderr


def test_the_offline_demo_runs(tmp_path: Path) -> None:
    """`bash tools/demo --offline`, which the README offers next to the demo: every step
    runs, the override is named and the tree is clean again."""
    env = {**os.environ, "NFTUNE_VENV": str(Path(sys.executable).parents[1])}
    p = subprocess.run(["bash", "tools/demo", "--offline"], capture_output=True, text=True,
                       cwd=TOP, env=env, timeout=300, check=False)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "Traceback" not in p.stdout + p.stderr
    assert "(exit status 1: the override is named, with its file and line)" in p.stdout
    assert "overridden-by-file" in p.stdout


def test_the_proof_docs_cycle_example_is_what_chain_prints(tmp_path: Path) -> None:
    """docs/proof.md's cycle, on a boot with this host's (Debian 12's) two units, an agent
    with default dependencies that multi-user.target wants, and the drop-in ordering
    modules-load after it: `nftune chain --root` prints the block (its first line is cut
    there at " (…)"), exit 1."""
    from conftest import add_boot, write
    from readme import block

    units = Path("/lib/systemd/system")
    assert (units / "systemd-sysctl.service").is_file(), "a Debian 12 host has systemd's units"
    add_boot(tmp_path)
    for unit in ("systemd-sysctl.service", "systemd-modules-load.service"):
        shutil.copy(units / unit, tmp_path / "usr/lib/systemd/system" / unit)
    write(tmp_path, "/etc/systemd/system/some-agent.service",
          "[Unit]\n[Service]\nType=oneshot\nExecStart=/bin/true\n")
    wants = tmp_path / "etc/systemd/system/multi-user.target.wants"
    wants.mkdir()
    (wants / "some-agent.service").symlink_to("/etc/systemd/system/some-agent.service")
    write(tmp_path, "/etc/systemd/system/systemd-modules-load.service.d/50-agent.conf",
          "[Unit]\nAfter=some-agent.service\n")
    shown = block("NOT proven [ordering-cycle]: ordering cycle: systemd-sysctl.service < "
                  "sysinit.target < some-agent.service < systemd-modules-load.service < "
                  "systemd-sysctl.service (…)")
    p = subprocess.run([sys.executable, "-m", "nftune", "chain", "--root", str(tmp_path)],
                       capture_output=True, text=True, cwd=TOP, check=False)
    assert p.returncode == 1, p.stderr
    printed = p.stdout.splitlines()
    cut = shown[0].removesuffix(" (…)")
    assert cut != shown[0] and printed[0].startswith(cut + " ("), printed[0]
    assert printed[1:len(shown)] == shown[1:]
