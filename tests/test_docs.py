"""The README follows the program: its generated parts are current (tools/gen-readme), the
module map (docs/development.md) lists exactly the modules in nftune/, its examples run and
its configuration blocks parse, and every link to docs/ leads to a file there."""

from __future__ import annotations

import re
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
    """Each row of the README's table of measured kernels, counted from nftune/sysctldata.py."""
    from nftune.sysctldata import KERNELS, KEYS, MODULES

    text = README.read_text()
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
