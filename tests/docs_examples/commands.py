"""
The command lines of the docs, split as a shell would and checked against the programs' parsers.

``parse_lines(text)`` turns a shell block (or a crontab, or one ``ExecStart=``) into commands;
each command names the program it runs. What needs the example project (``manage.py``, the
demo's ``CREATE DATABASE`` hints, ``jq`` on a command's output) is checked by
``tests/docs_examples/runner.py``; the rest here, in the test process.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import runpy
import shlex
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from unittest import mock

from tests.docs_examples.blocks import REPO

OPERATORS = {"&&", "||", "|", ";"}
REDIRECTIONS = {">", ">>", "<", "2>", "&>"}
ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")
# minute hour day-of-month month day-of-week, as cron(8) reads them.
CRON_FIELD = re.compile(r"^(\*|\d+(-\d+)?)(/\d+)?(,(\*|\d+(-\d+)?)(/\d+)?)*$")
CRON_RANGES = [(0, 59), (0, 23), (1, 31), (1, 12), (0, 7)]
SUBSTITUTION = re.compile(r"\$\(([^()]*)\)")
PROGRAMS_ACCEPTED = {"cd", "echo", "date"}


@dataclass
class Command:
    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)
    comment: str = ""
    piped_into: Command | None = None
    line: str = ""

    @property
    def program(self) -> str:
        """``manage.py``, ``dev.py``, ``pip``, ``benchmarks/...py``, or the executable."""
        first = self.argv[0]
        if Path(first).name.startswith("python"):
            if self.argv[1:3] == ["-m", "pip"]:
                return "pip"
            return self.argv[1]
        return first

    @property
    def args(self) -> list[str]:
        if Path(self.argv[0]).name.startswith("python"):
            return self.argv[3:] if self.program == "pip" else self.argv[2:]
        return self.argv[1:]


def strip_comment(line: str) -> tuple[str, str]:
    """``(code, comment)``: a ``#`` outside quotes, at a word's start, opens the comment."""
    quote = None
    for index, char in enumerate(line):
        if quote:
            quote = None if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char == "#" and (index == 0 or line[index - 1].isspace()):
            return line[:index].rstrip(), line[index + 1 :].strip()
    return line.rstrip(), ""


def logical_lines(text: str) -> list[str]:
    """The lines of a shell script, with backslash-newline continuations joined."""
    return text.replace("\\\n", " ").splitlines()


def split_commands(code: str, comment: str = "") -> list[Command]:
    """The simple commands of one shell line: ``&&``, ``||``, ``;`` and pipes split it."""
    substitutions = [inner for inner in SUBSTITUTION.findall(code)]
    code = SUBSTITUTION.sub("SUBSTITUTED", code)
    lexer = shlex.shlex(code, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    lexer.commenters = ""
    commands: list[Command] = []
    words: list[str] = []
    pipe_from: Command | None = None
    tokens = list(lexer)
    index = 0

    def finish(operator: str | None) -> None:
        nonlocal pipe_from, words
        env = {}
        while words and ASSIGNMENT.match(words[0]):
            name, _, value = words.pop(0).partition("=")
            env[name] = value
        if not words:
            words = []
            return  # only assignments: MAILTO=... in a crontab
        command = Command(words, env, comment, line=code)
        if pipe_from is not None:
            pipe_from.piped_into = command
        commands.append(command)
        pipe_from = command if operator == "|" else None
        words = []

    while index < len(tokens):
        token = tokens[index]
        if token in OPERATORS:
            finish(token)
        elif token in REDIRECTIONS:
            index += 1  # the file
        else:
            words.append(token)
        index += 1
    finish(None)
    for inner in substitutions:
        commands += split_commands(inner)
    return commands


def parse_lines(text: str) -> list[Command]:
    commands = []
    for line in logical_lines(text):
        code, comment = strip_comment(line)
        if code.strip():
            commands += split_commands(code, comment)
    return commands


# crontab ----------------------------------------------------------------------------------------


def crontab_entries(text: str, system: bool) -> list[tuple[list[str], str]]:
    """
    ``(schedule fields, command)`` of each job of a crontab, or a ``ValueError`` naming the
    line cron(8) would not run as written. In ``/etc/cron.d`` files (``system``) a user name
    follows the schedule.
    """
    entries = []
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if ASSIGNMENT.match(stripped) and " " not in stripped.partition("=")[0]:
            continue  # MAILTO=..., PATH=...
        parts = stripped.split(None, 6 if system else 5)
        schedule, rest = parts[:5], parts[5:]
        for value, (low, high) in zip(schedule, CRON_RANGES, strict=True):
            if not CRON_FIELD.match(value):
                raise ValueError(f"line {number}: {value!r} is not a cron schedule field")
            for number_text in re.findall(r"\d+", value.split("/")[0]):
                if not low <= int(number_text) <= high:
                    raise ValueError(f"line {number}: {value!r} is outside {low}-{high}")
        if system:
            user, *rest = rest
            if not re.fullmatch(r"[a-z_][a-z0-9_-]*", user):
                raise ValueError(f"line {number}: {user!r} is not a user name")
        command = rest[0] if rest else ""
        if not command:
            raise ValueError(f"line {number}: no command")
        if command.endswith("\\"):
            raise ValueError(
                f"line {number}: cron has no line continuation; the next line would be a job "
                "of its own"
            )
        if re.search(r"(?<!\\)%", command):
            raise ValueError(f"line {number}: an unescaped % ends the command for cron")
        entries.append((schedule, command.replace("\\%", "%")))
    return entries


def looks_like_crontab_line(line: str) -> bool:
    fields = line.split()
    return len(fields) > 5 and all(CRON_FIELD.match(value) for value in fields[:5])


# Checks that need no example project -------------------------------------------------------------


def dev_parse(args: list[str]) -> tuple[Any, list[str]]:
    """dev.py's own parser; what it rejects, an AssertionError with argparse's message."""
    sys.path.insert(0, str(REPO))
    try:
        import dev
    finally:
        sys.path.remove(str(REPO))
    stderr = io.StringIO()
    try:
        with contextlib.redirect_stderr(stderr):
            return dev.parse(args)  # type: ignore[no-any-return]
    except SystemExit:  # argparse's error(), or --help
        raise AssertionError(f"dev.py {shlex.join(args)}: {stderr.getvalue().strip()}") from None


def check_pytest_args(args: list[str]) -> None:
    """pytest's parser: collecting an empty folder exits 5 (no tests), a bad option 4."""
    import tempfile

    with tempfile.TemporaryDirectory() as empty:
        (Path(empty) / "pytest.ini").write_text("[pytest]\n")
        result = subprocess.run(
            [sys.executable, "-m", "pytest", *args, "--collect-only", "-p", "no:cacheprovider"],
            cwd=empty,
            env={k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"},
            capture_output=True,
            text=True,
            timeout=60,
        )
    if result.returncode != 5:
        raise AssertionError(f"pytest {' '.join(args)}: {result.stdout}{result.stderr}")


def check_pip(command: Command) -> None:
    from pip._internal.commands import create_command

    name, *args = command.args
    pip_command = create_command(name)
    options, _ = pip_command.parse_args(args)
    for editable in getattr(options, "editables", []):
        project = project_name()
        # The docs' path stands for a clone of the repository, which is named after it.
        if Path(editable).name != project:
            raise AssertionError(f"pip install -e {editable}: not a clone of {project}")


def project_name() -> str:
    match = re.search(r'^name = "([^"]+)"', (REPO / "pyproject.toml").read_text(), re.MULTILINE)
    assert match, "pyproject.toml names no project"
    return match[1]


def check_script(command: Command) -> None:
    """A script of the repository, run up to its argparse parser only."""
    script = REPO / command.program
    if not script.is_file():
        raise AssertionError(f"{command.program} does not exist")
    stop = (
        "import argparse, runpy, sys\n"
        "parse = argparse.ArgumentParser.parse_args\n"
        "def parsed(self, *args, **kwargs):\n"
        "    parse(self, *args, **kwargs)\n"
        "    print('PARSED')\n"
        "    raise SystemExit(0)\n"
        "argparse.ArgumentParser.parse_args = parsed\n"
        "sys.argv = sys.argv[1:]\n"
        "runpy.run_path(sys.argv[0], run_name='__main__')\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", stop, str(script), *command.args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    if result.returncode != 0 or "PARSED" not in result.stdout:
        raise AssertionError(f"{command.line}: {result.stderr.strip()}")


def example_settings(env: dict[str, str]) -> tuple[dict[str, object], set[str]]:
    """The example project's settings under ``env``, and the variables it read."""
    read: set[str] = set()
    real_get = os.environ.get

    def get(name: str, default: str | None = None) -> str | None:
        read.add(name)
        return real_get(name, default)

    path = REPO / "example_project" / "example_project" / "settings.py"
    with mock.patch.dict(os.environ, env), mock.patch.object(os.environ, "get", get):
        namespace = runpy.run_path(str(path))
    return namespace, read


def check_environment(command: Command) -> None:
    """``CROSSDB_EXAMPLE_*=...`` before a command: variables the example settings read."""
    if not command.env:
        return
    settings, read = example_settings(command.env)
    unknown = sorted(set(command.env) - read)
    if unknown:
        raise AssertionError(f"the example project's settings never read {', '.join(unknown)}")
    engines = {alias: conf["ENGINE"] for alias, conf in settings["DATABASES"].items()}
    servers = {"postgres": "django.db.backends.postgresql", "mariadb": "django.db.backends.mysql"}
    for name, value in command.env.items():
        alias = name.removeprefix("CROSSDB_EXAMPLE_").lower()
        if value in servers and engines.get(alias) != servers[value]:
            raise AssertionError(f"{name}={value} gives {alias} the engine {engines.get(alias)}")


def forwarded(command: Command) -> list[Command]:
    """The commands the example project's runner checks: manage.py and the database clients."""
    if command.program in ("manage.py", "psql", "mariadb"):
        return [command]
    if command.program == "dev.py":
        args, rest = dev_parse(command.args)
        if args.command == "demo":
            return [Command(["python", "manage.py", "demo", *rest], line=command.line)]
    return []


def check_locally(command: Command) -> None:
    """Check what needs no example project, or raise AssertionError."""
    check_environment(command)
    program = command.program
    if program == "dev.py":
        args, rest = dev_parse(command.args)
        if args.command == "test" and rest:
            check_pytest_args(rest)
    elif program == "pip":
        check_pip(command)
    elif program.startswith("benchmarks/") and program.endswith(".py"):
        check_script(command)
    elif program not in ("manage.py", "psql", "mariadb", "jq", *PROGRAMS_ACCEPTED):
        raise AssertionError(f"no check knows the program {program!r} ({command.line})")
