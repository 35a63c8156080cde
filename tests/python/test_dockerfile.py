"""The Dockerfile, read as text (no image is built here: the base images'
registries are out of reach of the tests). What it checks is modest: the
shape of the build, not that it builds.

- multi-stage; the builder runs `cargo build --release --locked --bin signet`;
- the last stage (the default target) copies only the binary from the
  builder, runs no command, and runs as a numeric non-root user;
- no ARG or ENV carries a PIN, password, secret or token, in any stage;
- the development stage (softhsm-dev) says so and is not the default;
- everything copied from the build context is admitted by .dockerignore,
  which admits nothing else.

The softhsm-dev entry point script is also run for real against SoftHSM2:
it creates the token once and reuses it.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from conftest import signet_bin

ROOT = Path(__file__).resolve().parent.parent.parent
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
ENTRYPOINT = ROOT / "docker" / "softhsm-dev-entrypoint.sh"
SECRETISH = re.compile(r"pin|passw|secret|token|api[_-]?key", re.IGNORECASE)


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def all(self, op: str) -> list[str]:
        return [arg for o, arg in self.instructions if o == op]


def instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs: comments dropped, continuations joined."""
    out: list[tuple[str, str]] = []
    logical = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not logical and (not line or line.startswith("#")):
            continue
        if logical and line.startswith("#"):
            continue  # a comment inside a continued instruction
        if line.endswith("\\"):
            logical += line[:-1] + " "
            continue
        logical += line
        op, _, arg = logical.strip().partition(" ")
        out.append((op.upper(), arg.strip()))
        logical = ""
    assert not logical, "the Dockerfile ends inside a continued line"
    return out


def parse() -> tuple[dict[str, str], list[Stage]]:
    args: dict[str, str] = {}
    stages: list[Stage] = []
    for op, arg in instructions(DOCKERFILE.read_text()):
        if op == "FROM":
            m = re.fullmatch(r"(\S+)(?:\s+AS\s+(\S+))?", arg, re.IGNORECASE)
            assert m, f"FROM {arg}"
            base = re.sub(r"\$\{(\w+)\}", lambda v: args[v.group(1)], m.group(1))
            stages.append(Stage(base=base, name=m.group(2)))
        elif not stages:
            assert op == "ARG", f"{op} before the first FROM"
            name, _, default = arg.partition("=")
            args[name] = default
        else:
            stages[-1].instructions.append((op, arg))
    return args, stages


def exec_form(arg: str) -> list[str]:
    value = json.loads(arg)
    assert isinstance(value, list), f"not the exec form: {arg}"
    return value


def test_multi_stage_builder():
    _, stages = parse()
    assert len(stages) >= 2
    builder = stages[0]
    assert builder.name == "builder"
    assert builder.base.startswith("rust:") and builder.base.endswith("bookworm")
    runs = " ".join(builder.all("RUN"))
    assert "cargo build --release --locked --bin signet" in runs


def test_runtime_stage_holds_only_the_binary():
    _, stages = parse()
    runtime = stages[-1]
    assert runtime.name == "runtime"
    assert runtime.base.startswith(("gcr.io/distroless/cc-debian12", "debian:bookworm-slim"))
    ops = {op for op, _ in runtime.instructions}
    assert ops <= {"COPY", "USER", "EXPOSE", "ENTRYPOINT", "CMD", "LABEL", "WORKDIR"}, ops
    copies = runtime.all("COPY")
    assert copies == ["--from=builder /out/signet /usr/local/bin/signet"]
    assert exec_form(runtime.all("ENTRYPOINT")[-1]) == ["/usr/local/bin/signet"]
    assert exec_form(runtime.all("CMD")[-1]) == ["serve"]
    assert sorted(" ".join(runtime.all("EXPOSE")).split()) == ["50051", "9090"]


def _numeric_non_root(user: str) -> bool:
    uid, _, gid = user.partition(":")
    return uid.isdigit() and int(uid) != 0 and (not gid or (gid.isdigit() and int(gid) != 0))


def test_final_and_dev_stages_run_as_numeric_non_root_users():
    _, stages = parse()
    for stage in stages[1:]:
        users = stage.all("USER")
        assert users, f"stage {stage.name} sets no USER"
        assert _numeric_non_root(users[-1]), f"stage {stage.name}: USER {users[-1]}"
    assert stages[-1].all("USER")[-1] == "65532:65532", "the Helm chart runs as 65532"


def test_no_secret_in_arg_or_env():
    args, stages = parse()
    for name, default in args.items():
        assert not SECRETISH.search(name) and not SECRETISH.search(default), f"ARG {name}"
    for stage in stages:
        for op, arg in stage.instructions:
            if op in ("ARG", "ENV"):
                assert not SECRETISH.search(arg), f"{stage.name}: {op} {arg}"
            if op == "RUN":
                assert "--pin" not in arg and "--so-pin" not in arg, f"{stage.name}: a token is made at build time"


def test_softhsm_dev_stage_is_labelled_and_not_the_default():
    _, stages = parse()
    dev = [s for s in stages if s.name == "softhsm-dev"]
    assert len(dev) == 1 and dev[0] is not stages[-1]
    dev = dev[0]
    assert dev.base.startswith("debian:bookworm-slim")
    assert "DEVELOPMENT ONLY" in " ".join(dev.all("LABEL"))
    assert re.search(r"softhsm-dev: DEVELOPMENT ONLY", DOCKERFILE.read_text())
    assert "softhsm2" in " ".join(dev.all("RUN")) and "opensc" in " ".join(dev.all("RUN"))
    assert "--from=builder /out/signet /usr/local/bin/signet" in dev.all("COPY")


def test_dockerignore_admits_only_what_is_copied():
    patterns = [l.strip() for l in DOCKERIGNORE.read_text().splitlines() if l.strip() and not l.startswith("#")]
    assert patterns[0] == "*", ".dockerignore must start by ignoring everything"
    admitted = {p[1:].rstrip("/") for p in patterns[1:]}
    assert all(p.startswith("!") for p in patterns[1:])
    _, stages = parse()
    sources: set[str] = set()
    for stage in stages:
        for arg in stage.all("COPY"):
            if arg.startswith("--from="):
                continue
            parts = arg.split()
            sources.update(p.removeprefix("./").rstrip("/") for p in parts[:-1])
    assert sources == admitted
    for s in sources:
        assert (ROOT / s).exists(), f"COPY {s}: not in the repository"
    for never in ("target", ".venv", ".git"):
        assert never not in admitted


def test_softhsm_dev_entrypoint_makes_the_token_once(tmp_path):
    """The dev image's entry point, run here with this machine's SoftHSM2 and
    signet: the first run creates the token, the second reuses it."""
    env = dict(os.environ)
    env.update(
        SIGNET_DEV_DIR=str(tmp_path / "dev"),
        SIGNET_BIN=signet_bin(),
        SIGNET_MAKE_TOKEN=str(ROOT / "softhsm" / "make-token.sh"),
    )
    first = subprocess.run(["bash", str(ENTRYPOINT), "--version"], env=env, capture_output=True, text=True, timeout=60)
    assert first.returncode == 0, first.stderr
    assert first.stdout.startswith("signet ")
    assert "creating a SoftHSM2 token" in first.stderr
    token = tmp_path / "dev" / "token"
    assert (token / "softhsm2.conf").is_file() and (token / "signet.toml").is_file()
    pin_before = (token / "user.pin").read_text()
    second = subprocess.run(["bash", str(ENTRYPOINT), "--version"], env=env, capture_output=True, text=True, timeout=60)
    assert second.returncode == 0, second.stderr
    assert "creating" not in second.stderr
    assert (token / "user.pin").read_text() == pin_before
    assert pin_before.strip() not in first.stdout + first.stderr + second.stdout + second.stderr


def test_entrypoint_script_parses():
    out = subprocess.run(["bash", "-n", str(ENTRYPOINT)], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
