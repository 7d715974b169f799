"""The README is a front door and its links, and the docs' links, lead somewhere.

Every relative link (and image) in README.md and docs/*.md points at a file or folder of the
repository, and a ``#fragment`` into a Markdown file names one of its headings (GitHub's
anchors). Links to the web are not followed (no network here). README.md stays under 150 lines:
the reference lives in docs/.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

PENDING: frozenset[str] = frozenset()  # pages linked before they exist: none

# [text](target) and ![alt](target), with an optional "title"; not inside inline code.
_LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
_FENCE = re.compile(r"^(```|~~~).*?^\1", re.MULTILINE | re.DOTALL)
_CODE = re.compile(r"`[^`\n]*`")


def pages(repo: Path = REPO) -> list[Path]:
    """README.md and every Markdown page under docs/."""
    return [repo / "README.md", *sorted((repo / "docs").glob("*.md"))]


def links(text: str) -> list[str]:
    """The targets of a Markdown text's links and images, outside code blocks and code spans."""
    text = _CODE.sub("", _FENCE.sub("", text))
    return _LINK.findall(text)


def anchor(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation dropped, spaces become hyphens."""
    text = _CODE.sub(lambda m: m.group(0).strip("`"), heading.strip()).lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    text = _FENCE.sub("", page.read_text(encoding="utf-8"))
    return {anchor(m) for m in re.findall(r"^#{1,6}\s+(.+?)\s*#*\s*$", text, re.MULTILINE)}


def broken_links(page: Path, repo: Path = REPO, pending: frozenset[str] = frozenset()) -> list[str]:
    """The relative links of ``page`` that lead nowhere, each as ``target: why``."""
    broken = []
    for target in links(page.read_text(encoding="utf-8")):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.IGNORECASE):  # http:, https:, mailto:
            continue
        path, _, fragment = target.partition("#")
        dest = (page.parent / path).resolve() if path else page.resolve()
        try:
            rel = dest.relative_to(repo.resolve()).as_posix()
        except ValueError:
            broken.append(f"{target}: outside the repository")
            continue
        if rel in pending:
            continue
        if not dest.exists():
            broken.append(f"{target}: {rel} does not exist")
        elif fragment and dest.suffix == ".md" and fragment not in anchors(dest):
            broken.append(f"{target}: no heading #{fragment} in {rel}")
    return broken


@pytest.mark.parametrize("page", pages(), ids=lambda p: p.relative_to(REPO).as_posix())
def test_every_relative_link_leads_to_a_file_of_the_repository(page: Path) -> None:
    assert broken_links(page, pending=PENDING) == []


def test_the_docs_pages_exist_and_the_readme_links_every_one() -> None:
    docs = {p.relative_to(REPO).as_posix() for p in pages()[1:]}
    assert {"docs/cli.md", "docs/study-file.md", "docs/benchmarks.md"} <= docs
    readme = REPO / "README.md"
    linked = {
        (readme.parent / t.partition("#")[0]).resolve().relative_to(REPO).as_posix()
        for t in links(readme.read_text(encoding="utf-8"))
        if t.startswith("docs/")
    }
    assert docs | PENDING <= linked, sorted((docs | PENDING) - linked)


def test_readme_is_a_front_door_under_150_lines() -> None:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    assert len(text.splitlines()) < 150
    # The two set-up commands, verbatim: .ci/run runs the second one as CI.
    assert ".ci/setup && .venv/bin/autostudent search studies/fashion_mnist.yaml" in text
    assert ".ci/setup && .venv/bin/python -m pytest -q" in text
    assert ".ci/setup && .venv/bin/python -m pytest -q" in (REPO / ".ci" / "run").read_text()


def test_the_checker_finds_a_broken_link_a_missing_heading_and_skips_code(tmp_path) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "there.md").write_text("# Top\n\n## What a trial stores\n")
    page = tmp_path / "README.md"
    page.write_text(
        "[ok](docs/there.md) [ok](docs/there.md#what-a-trial-stores) [web](https://x.org/a)\n"
        "![gone](pics/gone.png) [gone](docs/gone.md) [bad](docs/there.md#nowhere)\n"
        "[pending](docs/later.md) [up](../elsewhere.md) `[code](docs/code.md)`\n"
        "```\n[fenced](docs/fenced.md)\n```\n"
    )
    found = broken_links(page, repo=tmp_path, pending=frozenset({"docs/later.md"}))
    assert found == [
        "pics/gone.png: pics/gone.png does not exist",
        "docs/gone.md: docs/gone.md does not exist",
        "docs/there.md#nowhere: no heading #nowhere in docs/there.md",
        "../elsewhere.md: outside the repository",
    ]


def test_anchor_follows_github() -> None:
    assert anchor("Results on Fashion-MNIST") == "results-on-fashion-mnist"
    assert anchor("How to read `scaling`") == "how-to-read-scaling"
    assert anchor("`search`") == "search"
