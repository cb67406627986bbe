#!/usr/bin/env python3
"""
Developer entry point: one command to set up a virtualenv and run the tests.

    python3 dev.py test                      # both topologies: sqlite, then real
    python3 dev.py test --topology sqlite -k lookups -x
    python3 dev.py test --python ~/.pyenv/versions/3.13.0/bin/python --django 6.1
    python3 dev.py lint                      # ruff check, ruff format --check, mypy
    python3 dev.py demo                      # example_project/manage.py demo
    python3 dev.py conformance --mode all    # Django's own tests with our fields
    python3 dev.py conformance --mode routed --modules select_related -- -k test_basic

The virtualenv is ``.venv`` for the invoking interpreter and the newest Django it
supports, else ``.venv-py<XY>-django-<spec>``. It is (re)installed only when
pyproject.toml, the Django spec or the extras change (a stamp file holds their hash),
so a second run starts at once. Needs only the standard library (Python >= 3.10).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent
TOPOLOGIES = ("sqlite", "real")
STAMP = ".crossdb-dev-stamp.json"
LINTED = ("src", "tests", "conformance")
# pytest's last line, e.g. "==== 120 passed, 2 skipped in 5.31s ====" (no "=" with -q).
PYTEST_SUMMARY = re.compile(r"^=*\s*((?:\d+ \w+|no tests ran)\b.* in \d+(?:\.\d+)?s\b.*?)\s*=*$")


def say(message: str) -> None:
    print(message, flush=True)


def banner(title: str) -> None:
    line = "=" * max(72, len(title) + 8)
    say(f"\n{line}\n=== {title}\n{line}")


def run(cmd: list[str], quiet_errors: bool = False) -> int:
    stderr = subprocess.DEVNULL if quiet_errors else None
    return subprocess.run(cmd, cwd=REPO, stderr=stderr).returncode


def django_requirement(spec: str | None) -> str | None:
    """'6.0' -> 'Django~=6.0.0'; '5.2.3' -> 'Django==5.2.3'; '>=5.2' and 'Django<6' as given."""
    if not spec:
        return None
    if re.fullmatch(r"\d+\.\d+", spec):
        return f"Django~={spec}.0"
    if re.fullmatch(r"\d+\.\d+\.\d+\w*", spec):
        return f"Django=={spec}"
    if spec.lower().startswith("django"):
        return spec
    return f"Django{spec}"


def python_tag(python: str) -> str:
    """'311' for a Python 3.11 interpreter."""
    code = "import sys; assert sys.version_info >= (3, 10); print('%d%d' % sys.version_info[:2])"
    try:
        out = subprocess.run([python, "-c", code], capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        sys.exit(f"dev.py: {python} is not a Python 3.10+ interpreter")
    return out.stdout.strip()


def venv_dir(python: str | None, django: str | None) -> Path:
    if python is None and django is None:
        return REPO / ".venv"
    tag = python_tag(python or sys.executable)
    slug = re.sub(r"[^a-z0-9]+", "-", (django or "latest").lower()).strip("-")
    return REPO / f".venv-py{tag}-django-{slug}"


def venv_python(venv: Path) -> Path:
    return venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def read_stamp(venv: Path) -> dict[str, object]:
    try:
        stamp = json.loads((venv / STAMP).read_text())
    except (OSError, ValueError):
        return {}
    return stamp if isinstance(stamp, dict) else {}


def ensure_venv(python: str | None, django_spec: str | None, extras: set[str]) -> Path:
    """Create or update the virtualenv and return its interpreter."""
    base = python or sys.executable
    venv = venv_dir(python, django_spec)
    django = django_requirement(django_spec)
    interpreter = venv_python(venv)
    wanted = {
        "python": python_tag(base),
        "pyproject": hashlib.sha256((REPO / "pyproject.toml").read_bytes()).hexdigest(),
        "django": django,
    }
    have = read_stamp(venv)
    same_python = interpreter.exists() and have.get("python") == wanted["python"]
    installed = set(have.get("extras", ())) if isinstance(have.get("extras"), list) else set()
    if same_python and all(have.get(k) == v for k, v in wanted.items()) and extras <= installed:
        return interpreter
    started = time.monotonic()
    if not same_python:
        say(f"dev.py: creating {venv.name} with {base}")
        if run([base, "-m", "venv", "--clear", str(venv)]) != 0:
            sys.exit(f"dev.py: could not create {venv}")
        installed = set()
    elif have.get("pyproject") == wanted["pyproject"] and have.get("django") == django:
        extras = extras | installed
    say(f"dev.py: installing -e .[{','.join(sorted(extras))}] into {venv.name}")
    pip = [str(interpreter), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    requirements = [f".[{','.join(sorted(extras))}]"]
    if django:
        requirements.append(django)
    if run([*pip, "-e", *requirements]) != 0:
        sys.exit(f"dev.py: pip install failed in {venv.name}")
    # mysqlclient needs a compiler and libmariadb-dev; without it PyMySQL stands in.
    if run([*pip, "mysqlclient"], quiet_errors=True) != 0:
        say("dev.py: mysqlclient did not install (no compiler or libmariadb-dev?); using PyMySQL")
    (venv / STAMP).write_text(json.dumps({**wanted, "extras": sorted(extras)}))
    say(f"dev.py: {venv.name} ready in {time.monotonic() - started:.0f}s")
    return interpreter


def versions(interpreter: Path) -> str:
    code = "import sys, django; print(sys.version.split()[0], django.get_version())"
    out = subprocess.run([str(interpreter), "-c", code], capture_output=True, text=True)
    py, _, dj = out.stdout.strip().partition(" ")
    return f"Python {py}, Django {dj}"


def run_pytest(interpreter: Path, topology: str, pytest_args: list[str]) -> tuple[int, str]:
    """Run pytest, streaming its output; return its exit code and its summary line."""
    env = {**os.environ, "CROSSDB_TEST_TOPOLOGY": topology, "PYTHONUNBUFFERED": "1"}
    color = ["--color=yes"] if sys.stdout.isatty() else []
    cmd = [str(interpreter), "-m", "pytest", *color, *pytest_args]
    summary = skipped = ""
    proc = subprocess.Popen(
        cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    assert proc.stdout is not None
    for line in proc.stdout:
        sys.stdout.write(line)
        plain = re.sub(r"\x1b\[[0-9;]*m", "", line).strip()
        match = PYTEST_SUMMARY.match(plain)
        if match:
            summary = match.group(1)
        elif "REAL TOPOLOGY " in plain:  # tests/conftest.py could not reach a server
            skipped = plain[plain.index("REAL TOPOLOGY ") :].rstrip(" !")
    sys.stdout.flush()
    return proc.wait(), skipped or summary


def report(lines: list[str]) -> None:
    """Print result lines, and append them to $CROSSDB_SUMMARY_FILE (.ci/run prints it last)."""
    for line in lines:
        say(line)
    summary_file = os.environ.get("CROSSDB_SUMMARY_FILE")
    if summary_file:
        with open(summary_file, "a") as handle:
            handle.writelines(f"{line}\n" for line in lines)


def command_test(args: argparse.Namespace, pytest_args: list[str]) -> int:
    interpreter = ensure_venv(args.python, args.django, {"test"})
    topologies = TOPOLOGIES if args.topology == "all" else (args.topology,)
    where = f"{versions(interpreter)}, {interpreter.parent.parent.name}"
    results, failed = [], False
    for topology in topologies:
        banner(f"pytest: topology={topology} ({where})")
        code, summary = run_pytest(interpreter, topology, pytest_args)
        failed = failed or code != 0
        status = "ok" if code == 0 else f"FAILED (exit {code})"
        results.append(f"{topology:6} {status:16} {summary or '(no summary)'}  [{where}]")
    banner("dev.py test summary")
    report(results)
    return 1 if failed else 0


def command_lint(args: argparse.Namespace, extra: list[str]) -> int:
    interpreter = ensure_venv(args.python, args.django, {"test", "lint"})
    bin_dir = interpreter.parent
    steps = [
        ("ruff check", [str(bin_dir / "ruff"), "check", *LINTED]),
        ("ruff format --check", [str(bin_dir / "ruff"), "format", "--check", *LINTED]),
        ("mypy", [str(interpreter), "-m", "mypy"]),
    ]
    failed = []
    for name, cmd in steps:
        banner(name)
        if run(cmd) != 0:
            failed.append(name)
    report([f"lint   {'FAILED: ' + ', '.join(failed) if failed else 'ok'}"])
    return 1 if failed else 0


def command_conformance(args: argparse.Namespace, extra: list[str]) -> int:
    """conformance/runner.py in the virtualenv; its last line: "conformance: N passed, M failed"."""
    interpreter = ensure_venv(args.python, args.django, {"test", "conformance"})
    banner(
        f"conformance: mode={args.mode} ({versions(interpreter)}, {interpreter.parent.parent.name})"
    )
    cmd = [str(interpreter), "-m", "conformance.runner", "--mode", args.mode]
    if args.modules:
        cmd += ["--modules", *args.modules]
    proc = subprocess.Popen([*cmd, "--", *extra], cwd=REPO, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    last = ""
    for line in proc.stdout:
        sys.stdout.write(line)
        last = line.strip() or last
    code = proc.wait()
    report([f"conformance {'ok' if code == 0 else f'FAILED (exit {code})':16} {last}"])
    return code


def command_demo(args: argparse.Namespace, extra: list[str]) -> int:
    interpreter = ensure_venv(args.python, args.django, {"test"})
    return run([str(interpreter), "example_project/manage.py", "demo", *extra])


def parse(argv: list[str]) -> tuple[argparse.Namespace, list[str]]:
    parser = argparse.ArgumentParser(
        prog="dev.py",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        allow_abbrev=False,
    )
    parser.add_argument("command", choices=("test", "lint", "demo", "conformance"))
    parser.add_argument("--python", help="interpreter for the virtualenv (default: this one)")
    parser.add_argument("--django", help="Django version or pip spec, e.g. 6.0 or '>=5.2,<6'")
    parser.add_argument("--topology", choices=(*TOPOLOGIES, "all"), default="all")
    parser.add_argument("--mode", choices=("same", "routed", "all"), default="all")
    parser.add_argument(
        "--modules", nargs="+", help="conformance: Django test modules, or ci, extended, known"
    )
    args, rest = parser.parse_known_args(argv)
    if rest[:1] == ["--"]:
        rest = rest[1:]
    return args, rest


def main(argv: list[str]) -> int:
    args, rest = parse(argv)
    commands = {
        "test": command_test,
        "lint": command_lint,
        "demo": command_demo,
        "conformance": command_conformance,
    }
    return commands[args.command](args, rest)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
