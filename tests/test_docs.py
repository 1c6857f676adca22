"""The documentation's links resolve: every relative link in a Markdown file names a file inside the repository."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
DOCS = sorted(p for p in [*ROOT.glob("*.md"), *ROOT.glob("docs/*.md"), *ROOT.glob("devices/*.md"),
                          *ROOT.glob("runtimes/*.md"), *ROOT.glob("samples/*.md"), *ROOT.glob("benchmarks/*.md")])


def _relative_links(text: str) -> list[str]:
    return [t for t in LINK.findall(text) if not t.startswith(("http://", "https://", "mailto:", "#"))]


@pytest.mark.parametrize("doc", DOCS, ids=[str(p.relative_to(ROOT)) for p in DOCS])
def test_relative_links_stay_in_the_repository_and_exist(doc: Path) -> None:
    bad = []
    for target in _relative_links(doc.read_text(encoding="utf-8")):
        path = (doc.parent / target.split("#")[0]).resolve()
        if not path.is_relative_to(ROOT) or not path.exists():
            bad.append(target)
    assert not bad, f"{doc.relative_to(ROOT)}: broken or outside-the-repository links {bad}"


def test_the_checker_sees_a_broken_link() -> None:
    assert _relative_links("see [x](missing.md) and [y](https://e.org) and [z](#top)") == ["missing.md"]
