"""The README follows the program: its generated parts are current (tools/gen-readme) and
its module map lists exactly the modules in nftune/."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

TOP = Path(__file__).resolve().parents[1]
README = TOP / "README.md"


def test_readme_generated_parts_are_current(tmp_path: Path) -> None:
    fresh = tmp_path / "README.md"
    fresh.write_text(README.read_text())
    subprocess.run([sys.executable, str(TOP / "tools/gen-readme"), str(fresh)], check=True)
    assert fresh.read_text() == README.read_text(), "README.md is stale: run tools/gen-readme"


def module_map() -> dict[str, str]:
    text = README.read_text()
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
