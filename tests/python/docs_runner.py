"""The documentation runner of test_docs.py: finds the fenced blocks of a
Markdown page, reads their docs-test markers, and runs a page's shell
blocks in order in one bash session. The conventions are described once,
at the top of test_docs.py; this module implements them."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

FENCE_RE = re.compile(r"^(?P<indent>\s*)(?P<fence>```+|~~~+)(?P<lang>[\w+-]*)\s*$")
MARKER_RE = re.compile(r"^\s*<!--\s*docs-test:(?P<body>.*?)-->\s*$")
ANY_MARKER_RE = re.compile(r"<!--\s*docs-test")
EXPECT_RE = re.compile(r"#=>\s*(?P<text>.*?)\s*$")
FILE_NAME_RE = re.compile(r"^[A-Za-z0-9._-]+$")
LOOPBACK_PORT_RE = re.compile(r"127\.0\.0\.1:(\d{2,5})\b")
DEMO_PORT = 50051

# The only changes made to a page's text before it runs.
REWRITES = [
    (re.compile(r"cargo run --release (?:--bin signet )?-- "), "signet "),
    (re.compile(r"\./target/release/signet\b"), "signet"),
]

# What the runner prints between blocks, to cut the output back into blocks.
BLOCK_TAG = "::docs-test:: block "
FAILED_TAG = "::docs-test:: failed "

# Background processes of a page get this long to exit after SIGTERM.
STOP_GRACE = 15.0


class MarkerError(Exception):
    pass


@dataclass
class Marker:
    kind: str  # "not run", "not checked", "serve", "run with"
    arg: str  # the reason, the file name or the command


@dataclass
class Block:
    page: str  # path relative to the repository root
    line: int  # line of the opening fence, 1-based
    lang: str
    text: str  # the content, the fence's indentation removed
    marker: Marker | None = None

    @property
    def where(self) -> str:
        return f"{self.page}:{self.line}"

    @property
    def runs(self) -> bool:
        """Executed by the page's bash session."""
        if self.marker and self.marker.kind == "not run":
            return False
        return self.lang == "sh" or bool(self.marker and self.marker.kind == "run with")

    @property
    def checked_config(self) -> bool:
        """A whole signet configuration, for `signet check-config`."""
        return self.lang == "toml" and not (self.marker and self.marker.kind == "not checked")

    def expectations(self) -> list[str]:
        """The texts of the block's `#=>` comments, in order."""
        return [m.group("text") for m in map(EXPECT_RE.search, self.text.splitlines()) if m]


def parse_marker(body: str) -> Marker:
    body = body.strip()
    for kind in ("not run", "not checked"):
        if body == kind or body.startswith(kind + ":"):
            reason = body[len(kind) + 1 :].strip()
            if not reason:
                raise MarkerError(f"'{kind}' without a reason (write '{kind}: WHY')")
            return Marker(kind, reason)
    if body == "serve" or body.startswith("serve "):
        name = body[len("serve") :].strip()
        if not FILE_NAME_RE.match(name):
            raise MarkerError(f"'serve' needs a plain file name, got {name!r}")
        return Marker("serve", name)
    if body.startswith("run with "):
        return Marker("run with", body[len("run with ") :].strip())
    raise MarkerError(f"unknown docs-test marker {body!r}")


# Which markers each kind of fence may carry.
ALLOWED = {
    "not run": lambda lang: lang == "sh",
    "run with": lambda lang: lang not in ("sh", "toml", ""),
    "not checked": lambda lang: lang == "toml",
    "serve": lambda lang: lang == "toml",
}


def parse_page(path: Path, root: Path) -> tuple[list[Block], list[str]]:
    """The fenced blocks of a page and the problems with its markers."""
    rel = str(path.relative_to(root))
    lines = path.read_text(encoding="utf-8").splitlines()
    blocks: list[Block] = []
    problems: list[str] = []
    used_markers: set[int] = set()
    i = 0
    while i < len(lines):
        m = FENCE_RE.match(lines[i])
        if not m:
            i += 1
            continue
        indent, fence, lang = len(m.group("indent")), m.group("fence"), m.group("lang")
        j = i + 1
        while j < len(lines) and lines[j].strip() != fence:
            j += 1
        if j == len(lines):
            problems.append(f"{rel}:{i + 1}: fence never closed")
            break
        body = "\n".join(line[indent:] if line[:indent].strip() == "" else line for line in lines[i + 1 : j])
        block = Block(rel, i + 1, lang, body + "\n")
        if i > 0 and MARKER_RE.match(lines[i - 1]):
            used_markers.add(i - 1)
            try:
                block.marker = parse_marker(MARKER_RE.match(lines[i - 1]).group("body"))
                if not ALLOWED[block.marker.kind](lang):
                    raise MarkerError(f"'{block.marker.kind}' does not apply to a ```{lang or '(plain)'} block")
            except MarkerError as e:
                problems.append(f"{rel}:{i}: {e}")
        blocks.append(block)
        i = j + 1
    for n, line in enumerate(lines):
        if ANY_MARKER_RE.search(line) and n not in used_markers:
            problems.append(f"{rel}:{n + 1}: a docs-test marker that is malformed or not on the line before a fence")
    serves = [b for b in blocks if b.marker and b.marker.kind == "serve"]
    if len(serves) > 1:
        problems.append(f"{rel}: more than one 'serve' marker ({', '.join(b.where for b in serves)})")
    return blocks, problems


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_map(blocks: list[Block], server_port: int) -> dict[int, int]:
    """Every loopback port the page's run blocks name, mapped to a free one;
    50051 (the CLI's default endpoint) to the page's server."""
    ports = {DEMO_PORT: server_port}
    for b in blocks:
        if b.runs:
            for m in LOOPBACK_PORT_RE.finditer(b.text):
                p = int(m.group(1))
                if p != 0 and p not in ports:
                    ports[p] = free_port()
    return ports


def rewrite(text: str, ports: dict[int, int]) -> str:
    for pattern, replacement in REWRITES:
        text = pattern.sub(replacement, text)
    return LOOPBACK_PORT_RE.sub(lambda m: f"127.0.0.1:{ports.get(int(m.group(1)), int(m.group(1)))}", text)


@dataclass
class Script:
    text: str
    # Script line (1-based) -> "page:line" of the doc line it came from.
    origin: dict[int, str] = field(default_factory=dict)


def page_script(blocks: list[Block], ports: dict[int, int]) -> Script:
    out = [
        "set -euo pipefail",
        f"trap 'echo \"{FAILED_TAG}status=$? line=$LINENO\"' ERR",
        'DOCS_TEST_HOME=$PWD',
    ]
    script = Script("")
    for b in blocks:
        if not b.runs:
            continue
        out.append(f"echo '{BLOCK_TAG}{b.where}'")
        if b.marker and b.marker.kind == "run with":
            out.append(f"{b.marker.arg} <<'DOCS_TEST_EOF'")
        for n, line in enumerate(rewrite(b.text, ports).splitlines()):
            out.append(line)
            script.origin[len(out)] = f"{b.page}:{b.line + 1 + n}"
        if b.marker and b.marker.kind == "run with":
            out.append("DOCS_TEST_EOF")
        # Each block starts in the page's directory.
        out.append('cd "$DOCS_TEST_HOME"')
    out.append(f"echo '{BLOCK_TAG}(end)'")
    script.text = "\n".join(out) + "\n"
    return script


@dataclass
class PageRun:
    status: int | None  # bash's exit status; None: timed out
    output: str
    leftover: bool  # a background process needed SIGKILL
    script: Script

    def segments(self) -> dict[str, str]:
        """The output of each block that ran, by its location."""
        parts: dict[str, str] = {}
        current = None
        for line in self.output.splitlines(keepends=True):
            if line.startswith(BLOCK_TAG):
                current = line[len(BLOCK_TAG) :].strip()
                parts[current] = ""
            elif current is not None:
                parts[current] += line
        return parts

    def failed_at(self) -> str | None:
        for line in reversed(self.output.splitlines()):
            if line.startswith(FAILED_TAG):
                m = re.search(r"status=(\d+) line=(\d+)", line)
                if m:
                    where = self.script.origin.get(int(m.group(2)), f"script line {m.group(2)}")
                    return f"{where} (exit status {m.group(1)})"
        return None


def process_state(pid: int) -> str | None:
    """The state letter of /proc/PID/stat (Z: exited, not yet reaped), or
    None when there is no such process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    return stat[stat.rindex(")") + 2 :].split()[0]


def _group_alive(pgid: int) -> bool:
    """A process of the group is still running. Orphans whose exit nobody
    reaps (as init does not here) stay zombies: they count as gone."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except (FileNotFoundError, ProcessLookupError):
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        if int(fields[2]) == pgid and fields[0] != "Z":
            return True
    return False


def run_script(script: Script, home: Path, env: dict[str, str], timeout: float) -> PageRun:
    """Runs the script with bash in home, in a session of its own; at the
    end every process left in that session gets SIGTERM (then SIGKILL)."""
    path = home.parent / f"{home.name}.docs-test.sh"
    path.write_text(script.text)
    out_path = home.parent / f"{home.name}.docs-test.out"
    with open(out_path, "wb") as out:
        proc = subprocess.Popen(
            ["bash", str(path)],
            cwd=home,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            status: int | None = proc.wait(timeout)
        except subprocess.TimeoutExpired:
            status = None
        leftover = False
        if _group_alive(proc.pid):
            os.killpg(proc.pid, signal.SIGTERM)
            deadline = time.monotonic() + STOP_GRACE
            while _group_alive(proc.pid) and time.monotonic() < deadline:
                time.sleep(0.1)
            if _group_alive(proc.pid):
                leftover = True
                os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    return PageRun(status, out_path.read_text(errors="replace"), leftover, script)


def page_problems(blocks: list[Block], run: PageRun) -> list[str]:
    """What went wrong with a page's run: a failing block, a missing
    expected output, a process that ignored SIGTERM."""
    problems = []
    segments = run.segments()
    if run.status is None:
        last = list(segments)[-1] if segments else "(start)"
        problems.append(f"timed out in the block at {last}")
    elif run.status != 0:
        problems.append(f"failed at {run.failed_at() or 'an unknown line'}")
    if run.leftover:
        problems.append(f"a process the page started was still running {STOP_GRACE:.0f}s after SIGTERM")
    for b in blocks:
        if not b.runs or b.where not in segments:
            continue
        seg, pos = segments[b.where], 0
        for want in b.expectations():
            found = seg.find(want, pos)
            if found < 0:
                problems.append(f"{b.where}: expected {want!r} in the block's output, in order")
                break
            pos = found + len(want)
    if run.status == 0 and "(end)" not in segments:
        problems.append("the page's script ended early")
    return problems
