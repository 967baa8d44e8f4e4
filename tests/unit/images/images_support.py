"""Test support for the image checks: a small Dockerfile reader and .dockerignore matcher.

No Docker engine runs here, so the Dockerfiles are checked as text. The reader
follows the Dockerfile grammar closely enough for that (line continuations,
comment lines inside continuations, JSON exec form, ARG defaults in FROM),
and the matcher follows .dockerignore rules (last matching pattern wins, `!`
re-includes, a match on a directory covers everything below it).
"""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
IMAGES = ("master", "worker", "operator")


@dataclass
class Stage:
    base: str  # the FROM image with global ARG defaults substituted
    name: str | None
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def all(self, instr: str) -> list[str]:
        return [args for name, args in self.instructions if name == instr]


@dataclass
class Dockerfile:
    path: Path
    global_args: dict[str, str]
    stages: list[Stage]

    @property
    def final(self) -> Stage:
        return self.stages[-1]

    def args(self) -> dict[str, str]:
        """Every ARG default in the file (global and per stage)."""
        out = dict(self.global_args)
        for stage in self.stages:
            for arg in stage.all("ARG"):
                name, _, default = arg.partition("=")
                out.setdefault(name.strip(), default.strip().strip('"'))
        return out

    def expand(self, text: str) -> str:
        """Substitute ${VAR}/$VAR with ARG defaults (repeatedly, for nested defaults)."""
        values = self.args()
        for _ in range(5):
            text = re.sub(r"\$\{(\w+)\}|\$(\w+)",
                          lambda m: values.get(m.group(1) or m.group(2), m.group(0)), text)
        return text


def logical_lines(text: str) -> list[str]:
    lines: list[str] = []
    current = ""
    for raw in text.splitlines():
        stripped = raw.strip()
        if stripped.startswith("#") or (not stripped and not current):
            continue  # comments (also inside continuations) and blank lines
        if stripped.endswith("\\"):
            current += stripped[:-1] + " "
            continue
        lines.append((current + stripped).strip())
        current = ""
    if current.strip():
        lines.append(current.strip())
    return lines


def parse_dockerfile(path: Path) -> Dockerfile:
    global_args: dict[str, str] = {}
    stages: list[Stage] = []
    for line in logical_lines(path.read_text()):
        instr, _, args = line.partition(" ")
        instr = instr.upper()
        args = args.strip()
        if instr == "ARG" and not stages:
            name, _, default = args.partition("=")
            global_args[name] = default.strip('"')
        elif instr == "FROM":
            words = args.split()
            image = re.sub(r"\$\{(\w+)\}", lambda m: global_args.get(m.group(1), ""), words[0])
            name = words[2] if len(words) == 3 and words[1].upper() == "AS" else None
            stages.append(Stage(base=image, name=name))
        else:
            stages[-1].instructions.append((instr, args))
    return Dockerfile(path=path, global_args=global_args, stages=stages)


def exec_form(args: str) -> list[str]:
    """ENTRYPOINT/CMD in JSON exec form (the shell form is rejected by the tests)."""
    value = json.loads(args)
    assert isinstance(value, list) and all(isinstance(x, str) for x in value)
    return value


def label_pairs(args: str) -> dict[str, str]:
    pairs: dict[str, str] = {}
    for token in shlex.split(args):
        key, _, value = token.partition("=")
        pairs[key] = value
    return pairs


def env_pairs(args: str) -> dict[str, str]:
    return label_pairs(args)


class DockerIgnore:
    """Decides whether a repository path reaches the build context."""

    def __init__(self, text: str) -> None:
        self.rules: list[tuple[bool, str]] = []
        for line in text.splitlines():
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            negate = line.startswith("!")
            pattern = line[1:] if negate else line
            self.rules.append((negate, pattern.strip("/")))

    @staticmethod
    def _regex(pattern: str) -> str:
        out = ""
        i = 0
        while i < len(pattern):
            if pattern.startswith("**/", i):
                out, i = out + "(?:.*/)?", i + 3
            elif pattern.startswith("**", i):
                out, i = out + ".*", i + 2
            elif pattern[i] == "*":
                out, i = out + "[^/]*", i + 1
            elif pattern[i] == "?":
                out, i = out + "[^/]", i + 1
            else:
                out, i = out + re.escape(pattern[i]), i + 1
        return out

    def _matches(self, pattern: str, path: str) -> bool:
        # A pattern that matches a directory excludes (or re-includes) all below it.
        parts = path.split("/")
        regex = self._regex(pattern)
        return any(re.fullmatch(regex, "/".join(parts[: i + 1])) for i in range(len(parts)))

    def included(self, path: str) -> bool:
        excluded = False
        for negate, pattern in self.rules:
            if self._matches(pattern, path):
                excluded = not negate
        return not excluded
