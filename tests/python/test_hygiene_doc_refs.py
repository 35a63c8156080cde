"""References to documents stay inside the repository and stay true.

Every text file of the repository (docs, code comments, tests, the chart)
is read, and the test fails when one of them:

- points at the design directory outside the repository (the design's
  normative text lives in docs/ now);
- names a `something.md` that does not exist, looked up from the file's
  own directory and then from each directory above it up to the root
  (`README.md` in the chart's values.yaml is the chart's README);
- has a Markdown link whose relative target does not exist, or whose
  `#anchor` is not a heading of the target;
- quotes a section of a document that the document does not have:
  `docs/http-signing.md, "Verification"` needs a `## Verification`
  heading (numbering such as `8. ` is ignored; the citation may run over
  several comment lines).

Needs no server: it reads files only.
"""

from __future__ import annotations

import bisect
import re
import subprocess
from functools import lru_cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# Spelled in two parts, so that this file does not cite it itself.
OUTSIDE = "/".join(("shared", "design"))
# Stems that stand for "any page here" in prose (docs/presets/NAME.md).
PLACEHOLDERS = {"NAME"}
# Pages the docs runner's self-tests (test_docs.py) write into a temporary
# directory: names of files made at run time, not references.
MADE_BY_TESTS = {"tests/python/test_docs.py": {"page.md", "p.md"}}

URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://\S+")
MENTION = re.compile(r"(?<![\w./-])([\w./-]*[\w-]\.md)(?:#[\w-]+)?\b")
LINK = re.compile(r"\]\(([^()\s]+)\)")
COMMENT = re.compile(r"^\s*(?://[/!]?|#+|\*+|>)?\s*")
QUOTED = re.compile(r'"([^"]+)"')
CITATION = re.compile(
    r"(?<![\w./-])(?P<doc>[\w./-]*[\w-]\.md)`?(?:\]\((?P<target>[^()\s]+)\))?"
    r'\s*[,:(]\s*(?P<sections>"[^"]+"(?:\s*(?:,|and)\s*"[^"]+")*)'
)


def _repo_files() -> list[Path]:
    try:
        out = subprocess.run(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            cwd=ROOT, capture_output=True, check=True,
        ).stdout.decode()
        paths = [ROOT / p for p in out.split("\0") if p]
    except (OSError, subprocess.CalledProcessError):
        skip = {".git", "target", ".venv", "gen", "__pycache__"}
        paths = [p for p in ROOT.rglob("*") if not skip & set(p.relative_to(ROOT).parts)]
    return sorted(p for p in paths if p.is_file())


def _texts() -> list[tuple[Path, str]]:
    out = []
    for p in _repo_files():
        try:
            out.append((p, p.read_text(encoding="utf-8")))
        except UnicodeDecodeError:
            continue  # binary
    return out


def _normalise(title: str) -> str:
    title = title.replace("`", "").replace("*", "").strip()
    return re.sub(r"^\d+\.\s+", "", title).casefold()


@lru_cache(maxsize=None)
def _headings(path: Path) -> tuple[set[str], set[str]]:
    """A document's headings (normalised) and their GitHub anchors."""
    titles, anchors, fenced = set(), set(), False
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("```"):
            fenced = not fenced
        m = None if fenced else re.match(r"#{1,6}\s+(.*?)\s*#*$", line)
        if m:
            titles.add(_normalise(m.group(1)))
            slug = re.sub(r"[^\w\- ]", "", m.group(1).strip().lower()).replace(" ", "-")
            anchors.add(slug)
    return titles, anchors


def _resolve(source: Path, ref: str, walk_up: bool = True) -> Path | None:
    """`ref` from `source`'s directory, then (walk_up) from each one above it."""
    if ref.startswith("/"):
        return ROOT / ref.lstrip("/")
    base = source.parent
    while True:
        candidate = (base / ref).resolve()
        if candidate.exists() and (candidate == ROOT or ROOT in candidate.parents):
            return candidate
        if not walk_up or base == ROOT:
            return None
        base = base.parent


def _is_placeholder(source: Path, ref: str) -> bool:
    ref_path = Path(ref)
    if ref_path.stem not in PLACEHOLDERS:
        return False
    parent = _resolve(source, str(ref_path.parent) or ".")
    return parent is not None and parent.is_dir()


def _line_of(text: str, offset: int) -> int:
    return text.count("\n", 0, offset) + 1


def _flatten(text: str) -> tuple[str, list[int], list[int]]:
    """The text with comment leaders removed and lines joined by spaces,
    plus the offset where each line starts in it, for line numbers."""
    parts, starts, numbers, at = [], [], [], 0
    for number, line in enumerate(text.splitlines(), 1):
        line = COMMENT.sub("", line, count=1)
        starts.append(at)
        numbers.append(number)
        parts.append(line)
        at += len(line) + 1
    return " ".join(parts), starts, numbers


def _problems() -> list[str]:
    problems = []
    for path, raw in _texts():
        rel = path.relative_to(ROOT)
        for number, line in enumerate(raw.splitlines(), 1):
            if OUTSIDE in line:
                problems.append(f"{rel}:{number}: cites the design directory outside the repository")
        if path == Path(__file__).resolve():
            continue  # its own examples of rot, on purpose
        text = URL.sub(" ", raw)
        for m in MENTION.finditer(text):
            ref = m.group(1)
            made = MADE_BY_TESTS.get(path.relative_to(ROOT).as_posix(), set())
            if ref in made:
                continue
            if _resolve(path, ref) is None and not _is_placeholder(path, ref):
                problems.append(f"{rel}:{_line_of(text, m.start())}: {ref} is not in the repository")
        if path.suffix == ".md":
            for m in LINK.finditer(text):
                target = m.group(1)
                if target.startswith("mailto:"):
                    continue
                file_part, _, anchor = target.partition("#")
                where = f"{rel}:{_line_of(text, m.start())}"
                dest = _resolve(path, file_part, walk_up=False) if file_part else path
                if dest is None:
                    problems.append(f"{where}: link target {target} does not exist")
                elif anchor and dest.suffix == ".md" and anchor not in _headings(dest)[1]:
                    problems.append(f"{where}: {dest.relative_to(ROOT)} has no heading #{anchor}")
        flat, starts, numbers = _flatten(text)
        for m in CITATION.finditer(flat):
            target = m.group("target")
            dest = _resolve(path, target, walk_up=False) if target else _resolve(path, m.group("doc"))
            if dest is None or dest.suffix != ".md":
                continue  # a missing document is reported above
            titles = _headings(dest)[0]
            number = numbers[bisect.bisect_right(starts, m.start()) - 1]
            for section in QUOTED.findall(m.group("sections")):
                if _normalise(section) not in titles:
                    problems.append(
                        f'{rel}:{number}: {dest.relative_to(ROOT)} has no section "{section}"'
                    )
    return problems


def test_hygiene_documents_cited_are_in_the_repository():
    problems = _problems()
    assert not problems, "stale document references:\n" + "\n".join(problems)


def test_hygiene_doc_reference_check_catches_rot():
    """The helpers above find the kinds of rot they exist for."""
    doc = ROOT / "docs" / "http-signing.md"
    source = ROOT / "src" / "httpsig" / "engine" / "verify.rs"
    assert _resolve(source, "docs/http-signing.md") == doc
    assert _resolve(source, "http-signing.md") is None  # a bare name from src/ is not enough
    assert _resolve(source, "docs/missing-design.md") is None
    assert _resolve(doc, "../../README.md", walk_up=False) is None  # outside the repository
    assert _is_placeholder(ROOT / "README.md", "docs/presets/NAME.md")
    assert not _is_placeholder(ROOT / "README.md", "docs/nowhere/NAME.md")
    assert {"verification", "the multi-replica model"} <= (
        _headings(doc)[0] | _headings(ROOT / "docs" / "operations.md")[0]
    )
    flat, _, _ = _flatten('//! Verification: docs/http-signing.md,\n//! "Verification", "No such part".\n')
    found = [QUOTED.findall(m.group("sections")) for m in CITATION.finditer(flat)]
    assert found == [["Verification", "No such part"]]
    assert OUTSIDE not in Path(__file__).read_text(encoding="utf-8")
