"""The manual holds together: every relative link and image resolves (anchors included), and
every `perception` subcommand the docs name exists in the CLI's parser."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from perception_nodes import cli

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
FENCE = re.compile(r"^```.*?^```", re.S | re.M)
SPAN = re.compile(r"`([^`\n]+)`")
# `ros2 launch perception ...`, `colcon build --packages-select perception`: the package, not
# the command
NOT_COMMAND = {"launch", "run", "--packages-select", "package", "pkg"}


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    text = FENCE.sub("", page.read_text())
    seen: dict[str, int] = {}
    out = set()
    for m in re.finditer(r"^#{1,6} (.+)$", text, re.M):
        base = slug(m.group(1))
        n = seen.get(base, 0)
        seen[base] = n + 1
        out.add(base if n == 0 else f"{base}-{n}")
    return out


def links(page: Path) -> list[str]:
    return LINK.findall(FENCE.sub("", page.read_text()))


def test_the_manual_exists_and_the_readme_is_a_landing_page():
    names = {p.relative_to(ROOT).as_posix() for p in PAGES}
    for page in ("nodes", "real_cell", "training", "evaluation", "benchmarks", "sim",
                 "architecture", "papers"):
        assert f"docs/{page}.md" in names
    readme = (ROOT / "README.md").read_text()
    assert len(readme.splitlines()) < 250
    assert readme.index("make demo") < readme.index("## What runs")


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_every_relative_link_and_image_resolves(page):
    broken = []
    for target in links(page):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto:
            continue
        path, _, anchor = target.partition("#")
        dest = (page.parent / path).resolve() if path else page
        if not dest.exists():
            broken.append(target)
        elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
            broken.append(target)
    assert not broken, f"{page.name}: broken links {broken}"


def code_segments(text: str) -> list[str]:
    blocks = FENCE.findall(text)
    spans = SPAN.findall(FENCE.sub("", text))
    return blocks + spans


def named_subcommands(text: str) -> set[tuple[str, str]]:
    """(subcommand, eval capability or '') for every `perception X` in code."""
    found = set()
    for segment in code_segments(text):
        for line in segment.splitlines():
            tokens = line.split()
            for i, tok in enumerate(tokens[:-1]):
                # `perception ...`, `.venv/bin/perception ...`; not share/perception (a path)
                if tok != "perception" and not tok.endswith("bin/perception"):
                    continue
                if i and tokens[i - 1] in NOT_COMMAND:
                    continue
                sub = tokens[i + 1]
                if not re.fullmatch(r"[a-z][a-z0-9-]*", sub):
                    continue
                cap = tokens[i + 2] if sub == "eval" and i + 2 < len(tokens) else ""
                for c in cap.split("|"):
                    found.add((sub, c if re.fullmatch(r"[a-z][a-z-]*", c) else ""))
    return found


def test_every_subcommand_in_the_docs_exists_in_the_parser():
    parser = cli.build_parser()
    sub_action = next(a for a in parser._actions if a.choices and "eval" in a.choices)
    commands = set(sub_action.choices) | set(cli.SCRIPTS)
    eval_parser = sub_action.choices["eval"]
    capabilities = set(next(a for a in eval_parser._actions if a.dest == "capability").choices)
    named = set()
    for page in PAGES:
        named |= named_subcommands(page.read_text())
    assert ("eval", "segmentation") in named and ("bench", "") in named
    missing = sorted((s, c) for s, c in named
                     if s not in commands or (s == "eval" and c and c not in capabilities))
    assert not missing, f"named in the docs but not in `perception`: {missing}"


def test_the_checker_catches_a_broken_link_and_an_unknown_subcommand(tmp_path):
    page = tmp_path / "p.md"
    page.write_text("# Title\n[ok](p.md#title) [bad](nope.md) [anchor](p.md#missing)\n"
                    "`perception frobnicate --x` and `ros2 launch perception bringup`\n"
                    "`install/share/perception when installed`\n")
    assert links(page) == ["p.md#title", "nope.md", "p.md#missing"]
    assert anchors(page) == {"title"}
    assert named_subcommands(page.read_text()) == {("frobnicate", "")}
