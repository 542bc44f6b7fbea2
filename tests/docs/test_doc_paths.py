"""Every repository path the docs name exists: a doc sentence is a claim.

Scans README.md, docs/*.md and the configs' comments for `configs/...yaml`, `docs/...md` and
`benchmarks/...py|md` paths (and the docs' relative Markdown links) and checks each file is in the
checkout. A wrong name (`configs/paper/coco_fewshot.yaml` for `fewshot_coco.yaml`) fails here.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SOURCES = [
    ROOT / "README.md",
    *sorted((ROOT / "docs").glob("*.md")),
    *sorted((ROOT / "configs").rglob("*.yaml")),
]
# A path starts at a word boundary that is not part of a longer path (`../shared/docs/X.md` is outside).
PATH = re.compile(r"(?<![\w./-])((?:configs|docs|benchmarks)/[\w./-]*?\.(?:yaml|md|py))(?![\w/-])")
LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")
# Named on purpose although absent, with the words that say so in the same document.
ABSENT_ON_PURPOSE = {"benchmarks/results/gpu.md": "does not exist yet"}


def named_paths(text: str) -> set[str]:
    return {m for m in PATH.findall(text) if "*" not in m}


def test_the_pattern_finds_paths_and_skips_globs_and_outside_paths():
    text = (
        "vrft train configs/paper/fewshot_coco.yaml x; see docs/models.md, `benchmarks/gpu_check.py`, "
        "configs/paper/*.yaml and ../shared/docs/ARCHITECTURE.md"
    )
    assert named_paths(text) == {
        "configs/paper/fewshot_coco.yaml",
        "docs/models.md",
        "benchmarks/gpu_check.py",
    }


def test_every_named_path_exists():
    missing = []
    for src in SOURCES:
        text = src.read_text(encoding="utf-8")
        for path in sorted(named_paths(text)):
            if (ROOT / path).exists():
                continue
            if path in ABSENT_ON_PURPOSE and ABSENT_ON_PURPOSE[path] in text:
                continue
            missing.append(f"{src.relative_to(ROOT)}: {path}")
    assert not missing, "paths named in the docs that do not exist:\n" + "\n".join(missing)


def test_every_relative_markdown_link_resolves():
    broken = []
    for src in SOURCES:
        if src.suffix != ".md":
            continue
        for target in LINK.findall(src.read_text(encoding="utf-8")):
            if re.match(r"^[a-z]+:", target):  # http:, https:, mailto:
                continue
            if not (src.parent / target).exists():
                broken.append(f"{src.relative_to(ROOT)}: {target}")
    assert not broken, "Markdown links to files that do not exist:\n" + "\n".join(broken)
