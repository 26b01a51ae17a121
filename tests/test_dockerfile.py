"""The Dockerfile's rules, checked without a Docker engine (none runs on our machines).

``dockerfile_problems`` reads a Dockerfile the way the builder does (continuation lines,
comments, stages) and lists every broken rule; the real Dockerfile must have none, and each
rule is shown to catch a Dockerfile that breaks it. CI performs the image's install steps for
real (build the wheel, install it in a fresh virtualenv, ``starpod-bot --help`` and
``db upgrade``), see ``.ci/run``.
"""

from __future__ import annotations

import fnmatch
import json
import re
import shlex
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import typer

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"

# An official Python image, slim, with a full x.y.z version: a rebuild gets the same Python.
PINNED_BASE = re.compile(r"^python:3\.\d+\.\d+-slim(-[a-z]+)?(@sha256:[0-9a-f]{64})?$")
SECRET_NAME = re.compile(r"(SECRET|TOKEN|PASSWORD|PASSWD|API_KEY|PRIVATE_KEY|CREDENTIAL)", re.I)
SECRET_VALUE = re.compile(r"(xox[abposr]-|xapp-|sk-[A-Za-z0-9]{8}|-----BEGIN [A-Z ]*PRIVATE KEY)")
MUST_IGNORE = (".git", ".venv", ".env", "*.db")


@dataclass
class Instruction:
    """One Dockerfile instruction, continuation lines joined."""

    keyword: str
    args: str
    line: int

    def exec_form(self) -> list[str] | None:
        """The JSON array of an exec-form CMD/ENTRYPOINT/HEALTHCHECK CMD, else None."""
        text = self.args
        if self.keyword == "HEALTHCHECK":
            _, sep, text = text.partition(" CMD ")
            if not sep:
                return None
        try:
            value = json.loads(text.strip())
        except ValueError:
            return None
        return value if isinstance(value, list) and all(isinstance(v, str) for v in value) else None


@dataclass
class Stage:
    """A build stage: its FROM and what follows it."""

    image: str
    name: str | None
    instructions: list[Instruction] = field(default_factory=list)

    def all(self, keyword: str) -> list[Instruction]:
        return [i for i in self.instructions if i.keyword == keyword]


def parse_dockerfile(text: str) -> list[Stage]:
    """Split a Dockerfile into stages of instructions (comments dropped, ``\\`` lines joined)."""
    instructions: list[Instruction] = []
    pending: list[str] = []
    start = 0
    for number, raw in enumerate(text.splitlines(), start=1):
        stripped = raw.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if pending and stripped.startswith("#"):
            continue  # a comment inside a continued instruction is dropped by Docker too
        if not pending:
            start = number
        if stripped.endswith("\\"):
            pending.append(stripped[:-1].strip())
            continue
        pending.append(stripped)
        joined = " ".join(part for part in pending if part)
        pending = []
        keyword, _, args = joined.partition(" ")
        instructions.append(Instruction(keyword.upper(), args.strip(), start))
    stages: list[Stage] = []
    for instruction in instructions:
        if instruction.keyword == "FROM":
            words = [w for w in instruction.args.split() if not w.startswith("--")]
            name = words[2] if len(words) >= 3 and words[1].upper() == "AS" else None
            stages.append(Stage(image=words[0], name=name))
        elif stages:
            stages[-1].instructions.append(instruction)
    return stages


def env_pairs(instruction: Instruction) -> dict[str, str]:
    """The ``KEY=value`` pairs of an ENV or ARG instruction (the legacy ``ENV KEY value`` too)."""
    words = shlex.split(instruction.args)
    if words and "=" not in words[0] and instruction.keyword == "ENV":
        return {words[0]: " ".join(words[1:])}
    return dict(w.split("=", 1) if "=" in w else (w, "") for w in words)


def dockerfile_problems(text: str) -> list[str]:
    """Every rule the Dockerfile breaks (empty: it keeps them all)."""
    stages = parse_dockerfile(text)
    if not stages:
        return ["no FROM instruction"]
    problems: list[str] = []
    final = stages[-1]
    for stage in stages:
        if not PINNED_BASE.match(stage.image):
            problems.append(f"base {stage.image} is not an official python:X.Y.Z-slim tag")
    if len({stage.image for stage in stages}) != 1:
        problems.append("stages use different bases (the copied virtualenv needs the same one)")
    if len(stages) < 2:
        problems.append("not multi-stage: build in one stage, run in another")
    builder_runs = " ".join(i.args for s in stages[:-1] for i in s.all("RUN"))
    if not re.search(r"pip wheel|-m build", builder_runs):
        problems.append("no stage builds the wheel (pip wheel / python -m build)")
    if not re.search(
        r"pip install [^&]*\.whl", builder_runs + " ".join(i.args for i in final.all("RUN"))
    ):
        problems.append("the built wheel is never installed")
    builder_names = {s.name for s in stages[:-1] if s.name}
    if not any(
        m and m.group(1) in builder_names
        for m in (re.search(r"--from=(\S+)", i.args) for i in final.all("COPY"))
    ):
        problems.append("the final stage copies nothing from the build stage")
    problems += _user_problems(final)
    problems += _healthcheck_problems(final)
    problems += _data_problems(final)
    cmds = final.all("CMD")
    if not cmds or cmds[-1].exec_form() != ["starpod-bot", "run"]:
        problems.append('CMD must be the exec form ["starpod-bot", "run"]')
    if final.all("ENTRYPOINT"):
        problems.append("an ENTRYPOINT would wrap the CMD; keep CMD alone")
    problems += _secret_problems(stages)
    return problems


def _user_problems(final: Stage) -> list[str]:
    users = final.all("USER")
    if not users:
        return ["the final stage runs as root (no USER)"]
    user = users[-1].args.split(":")[0]
    if user in ("root", "0"):
        return [f"USER {users[-1].args} is root"]
    later_runs = [i for i in final.all("RUN") if i.line > users[-1].line]
    if later_runs:
        return [f"RUN on line {later_runs[0].line} comes after USER (keep USER last)"]
    return []


def _healthcheck_problems(final: Stage) -> list[str]:
    checks = final.all("HEALTHCHECK")
    if not checks:
        return ["no HEALTHCHECK"]
    check = checks[-1]
    if "/healthz" not in check.args:
        return ["the HEALTHCHECK does not probe /healthz"]
    command = check.exec_form()
    if command and command[:2] == ["python", "-c"]:
        try:
            compile(command[2], "<healthcheck>", "exec")
        except SyntaxError as exc:
            return [f"the HEALTHCHECK's Python does not compile: {exc}"]
    return []


def _data_problems(final: Stage) -> list[str]:
    problems = []
    volumes = " ".join(i.args for i in final.all("VOLUME"))
    if "/data" not in volumes:
        problems.append("no VOLUME /data")
    env: dict[str, str] = {}
    for instruction in final.all("ENV"):
        env.update(env_pairs(instruction))
    if not env.get("DATABASE_URL", "").startswith("sqlite:////data/"):
        problems.append("DATABASE_URL does not put the SQLite file under /data")
    exposed = {i.args.split("/")[0] for i in final.all("EXPOSE")}
    if env.get("PORT") not in exposed:
        problems.append(f"PORT={env.get('PORT')} is not the EXPOSEd port {sorted(exposed)}")
    return problems


def _secret_problems(stages: list[Stage]) -> list[str]:
    problems = []
    for stage in stages:
        for instruction in stage.instructions:
            if SECRET_VALUE.search(instruction.args):
                problems.append(f"line {instruction.line} carries what looks like a secret")
            if instruction.keyword in ("ENV", "ARG"):
                for key, value in env_pairs(instruction).items():
                    if SECRET_NAME.search(key):
                        problems.append(f"line {instruction.line} bakes {key} into the image")
                    elif value and SECRET_VALUE.search(value):
                        problems.append(f"line {instruction.line}: {key} holds a secret")
            if instruction.keyword in ("COPY", "ADD") and re.search(
                r"(^|\s)(\.env|\S+\.pem|\S+\.key|starpod-bot\.toml)(\s|$)", instruction.args
            ):
                problems.append(f"line {instruction.line} copies a secrets file")
    return problems


def dockerignore_patterns() -> list[str]:
    lines = DOCKERIGNORE.read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def ignored(path: str, patterns: list[str]) -> bool:
    return any(fnmatch.fnmatch(path, p) or fnmatch.fnmatch(path, f"**/{p}") for p in patterns)


# -- the real Dockerfile -------------------------------------------------------------------


def test_the_dockerfile_keeps_every_rule() -> None:
    assert dockerfile_problems(DOCKERFILE.read_text(encoding="utf-8")) == []


def test_the_base_image_tag_is_a_full_python_version() -> None:
    stages = parse_dockerfile(DOCKERFILE.read_text(encoding="utf-8"))
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    minimum = re.search(r"3\.(\d+)", project["requires-python"])
    assert minimum is not None
    for stage in stages:
        minor = int(stage.image.split(":")[1].split(".")[1])
        assert minor >= int(minimum.group(1)), f"{stage.image} is older than requires-python"


def test_the_entry_point_exists() -> None:
    """``starpod-bot run``: the console script is declared and the ``run`` command exists."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert project["scripts"]["starpod-bot"] == "bot.cli:main"
    from bot.cli import app, main

    assert callable(main)
    group = typer.main.get_command(app)
    assert "run" in group.commands, "bot.cli has no `run` command for CMD to start"  # type: ignore[attr-defined]


def test_the_build_context_holds_what_copy_needs_and_no_secrets() -> None:
    patterns = dockerignore_patterns()
    for must in MUST_IGNORE:
        assert must in patterns, f".dockerignore must exclude {must}"
    for stage in parse_dockerfile(DOCKERFILE.read_text(encoding="utf-8")):
        for instruction in stage.all("COPY"):
            if "--from=" in instruction.args:
                continue
            *sources, _destination = instruction.args.split()
            for source in sources:
                assert (ROOT / source).exists(), f"COPY {source}: no such path in the repo"
                assert not ignored(source, patterns), f"COPY {source} but .dockerignore drops it"


def test_the_wheel_ships_the_migrations() -> None:
    """The image installs only the wheel, so the migrations must travel inside it."""
    build = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["hatch"]
    force = build["build"]["targets"]["wheel"]["force-include"]
    assert force.get("migrations") == "bot/_migrations"
    from bot.store import migrate

    assert "_migrations" in migrate.migrations_dir.__doc__  # the locator looks there


def test_the_web_app_serves_the_healthcheck_path() -> None:
    sources = " ".join(p.read_text(encoding="utf-8") for p in (ROOT / "bot" / "web").rglob("*.py"))
    assert '"/healthz"' in sources, "bot/web serves no /healthz for the HEALTHCHECK"


# -- each rule catches what it is for ------------------------------------------------------

GOOD = DOCKERFILE.read_text(encoding="utf-8") if DOCKERFILE.is_file() else ""


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            lambda t: t.replace("python:3.11.11-slim-bookworm", "python:3.11-slim"),
            "not an official",
        ),
        (lambda t: t.replace("python:3.11.11-slim-bookworm", "python:latest"), "not an official"),
        (lambda t: re.sub(r"\nUSER [^\n]*", "\nUSER root", t), "is root"),
        (lambda t: re.sub(r"\nUSER [^\n]*", "", t), "runs as root"),
        (lambda t: t + "\nRUN apt-get update\n", "after USER"),
        (lambda t: re.sub(r"\nHEALTHCHECK(.*\\\n)*.*", "", t), "no HEALTHCHECK"),
        (lambda t: t.replace("/healthz", "/"), "does not probe /healthz"),
        (lambda t: t.replace('VOLUME ["/data"]', ""), "no VOLUME /data"),
        (lambda t: t.replace("sqlite:////data/", "sqlite:///./"), "under /data"),
        (lambda t: t.replace('CMD ["starpod-bot", "run"]', "CMD starpod-bot run"), "CMD must"),
        (lambda t: t + '\nENV SLACK_BOT_TOKEN=""\n', "bakes SLACK_BOT_TOKEN"),
        (lambda t: t + "\nLABEL x=xoxb-1234-abcd\n", "looks like a secret"),
        (lambda t: t.replace("COPY bot ./bot", "COPY .env ./\nCOPY bot ./bot"), "secrets file"),
        (lambda t: t.replace("EXPOSE 3000", "EXPOSE 8080"), "is not the EXPOSEd port"),
        (lambda t: t.replace("pip wheel", "pip download"), "builds the wheel"),
        (lambda t: t.split("# -- runtime")[0], "not multi-stage"),
    ],
)
def test_each_rule_catches_its_violation(change, expected: str) -> None:  # type: ignore[no-untyped-def]
    broken = change(GOOD)
    assert broken != GOOD, "the change did not apply; the test would prove nothing"
    problems = dockerfile_problems(broken)
    assert any(expected in p for p in problems), problems


def test_continuation_lines_and_comments_are_parsed_like_docker() -> None:
    stages = parse_dockerfile(
        "# c\nFROM python:3.11.11-slim AS b\nRUN a \\\n  # inner comment\n  && b\n"
        "FROM python:3.11.11-slim\nENV A=1 \\\n    B=2\n"
    )
    assert [s.name for s in stages] == ["b", None]
    assert stages[0].instructions[0].args == "a && b"
    assert env_pairs(stages[1].instructions[0]) == {"A": "1", "B": "2"}
