"""
Run Django's own test suite with our fields in place of ForeignKey and OneToOneField.

    python -m conformance.runner --mode all              # the CI modules, both modes
    python -m conformance.runner --mode routed --modules select_related -- -k test_basic

``python3 dev.py conformance`` calls this in the project's virtualenv. For the installed Django
version it downloads Django's source distribution once (``pip download``, cached under
``.conformance-cache/``), runs ``tests/runtests.py`` for the modules with Django's fields (the
baseline) and once per mode with ours, and compares: a test that fails only with our field
must be listed in ``conformance/expected_failures.py`` with its reason, and a listed test that
passes (or fails with Django's field too) is a stale entry. Either fails the run.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tarfile
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from conformance import swap
from conformance.expected_failures import FLAKY, Entry, expected_failures

REPO = Path(__file__).resolve().parent.parent
CACHE = REPO / ".conformance-cache"
MODES = ("same", "routed")
CI_MODULES = (
    "many_to_one",
    "one_to_one",
    "prefetch_related",
    "delete",
    "delete_regress",
    "model_formsets",
    "serializers",
)
EXTENDED_MODULES = (
    "model_forms",
    "admin_views",
    "many_to_one_null",
    "select_related",
    "select_related_onetoone",
    "select_related_regress",
    "foreign_object",
)
MODULE_SETS = {
    "ci": CI_MODULES,
    "extended": EXTENDED_MODULES,
    "known": CI_MODULES + EXTENDED_MODULES,
}
FAILED = ("error", "failure", "unexpectedSuccess")
PASSED = ("success", "expectedFailure")
# When one test records several outcomes (subtests), the worst one counts.
SEVERITY = ("skip", "expectedFailure", "success", "unexpectedSuccess", "failure", "error")


def say(message: str = "") -> None:
    print(message, flush=True)


# Django's tests -------------------------------------------------------------------------------


def django_tests(version: str) -> Path:
    """Django's tests/ for ``version``, with a runtests.py that installs crossdb too."""
    root = CACHE / f"django-{version}"
    tests = root / "tests"
    runtests = tests / "runtests_crossdb.py"
    if runtests.exists():
        return tests
    archive = CACHE / f"django-{version}.tar.gz"
    if not archive.exists():
        say(f"conformance: downloading Django {version}'s source distribution into {CACHE.name}/")
        pip = [sys.executable, "-m", "pip", "download", "--disable-pip-version-check", "-q"]
        options = ["--no-deps", "--no-binary", ":all:", f"Django=={version}", "-d", str(CACHE)]
        subprocess.run([*pip, *options], check=True)
    prefix = f"django-{version}/tests/"
    with tarfile.open(archive) as tar:
        members = [m for m in tar.getmembers() if m.name.startswith(prefix)]
        tar.extractall(CACHE, members=members, filter="data")
    source = (tests / "runtests.py").read_text()
    anchor = "ALWAYS_INSTALLED_APPS = [\n"
    if source.count(anchor) != 1:
        raise SystemExit(f"conformance: {anchor.strip()!r} not found once in runtests.py")
    # Our app's tables (crossdb.PendingPropagation) are needed by on_delete across databases.
    runtests.write_text(source.replace(anchor, anchor + '    "crossdb",\n'))
    return tests


def plan(tests: Path, modules: Iterable[str], mode: str) -> dict[str, swap.ModulePlan]:
    plans = {}
    for module in modules:
        files = swap.model_files(tests, module)
        sources = {str(path.relative_to(tests)): path.read_text() for path in files}
        plans[module] = swap.plan_module(module, sources, mode)
    return plans


# One run of runtests.py -----------------------------------------------------------------------


@dataclass
class Run:
    name: str
    outcomes: dict[str, str]
    errors: dict[str, str]
    seconds: float
    finished: bool
    swaps: list[dict[str, object]] = field(default_factory=list)
    log: Path | None = None


def read_records(path: Path) -> list[dict[str, object]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def outcomes_of(records: list[dict[str, object]]) -> tuple[dict[str, str], dict[str, str], bool]:
    """Each test's worst outcome, its first error text, and whether the run finished."""
    outcomes: dict[str, str] = {}
    errors: dict[str, str] = {}
    finished = False
    for record in records:
        ident, outcome = str(record["id"]), str(record["outcome"])
        if outcome == "finished":
            finished = True
            continue
        if ident not in outcomes or SEVERITY.index(outcome) > SEVERITY.index(outcomes[ident]):
            outcomes[ident] = outcome
        if record.get("error") and ident not in errors:
            errors[ident] = str(record["error"])
    return outcomes, errors, finished


def run_django_tests(
    tests: Path,
    name: str,
    settings: str,
    modules: list[str],
    plans: dict[str, swap.ModulePlan] | None,
    parallel: str,
    extra: list[str],
) -> Run:
    work = CACHE / "runs" / name
    work.mkdir(parents=True, exist_ok=True)
    results, swaps, log = work / "results.jsonl", work / "swaps.jsonl", work / "runtests.log"
    for path in (results, swaps):
        path.unlink(missing_ok=True)
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
        "PYTHONDONTWRITEBYTECODE": "1",
        "CROSSDB_CONFORMANCE_RESULTS": str(results),
        "CROSSDB_CONFORMANCE_SWAPS": str(swaps),
    }
    env.pop("CROSSDB_CONFORMANCE_PLAN", None)
    if plans is not None:
        plan_file = work / "plan.json"
        plan_file.write_text(json.dumps(plan_json(tests, name, plans), indent=1))
        env["CROSSDB_CONFORMANCE_PLAN"] = str(plan_file)
    cmd = [
        sys.executable,
        str(tests / "runtests_crossdb.py"),
        f"--settings={settings}",
        f"--parallel={parallel}",
        "--noinput",
        *modules,
        *extra,
    ]
    say(f"conformance: {name}: runtests.py {' '.join(modules)} (log: {log.relative_to(REPO)})")
    started = time.monotonic()
    with log.open("w") as handle:
        subprocess.run(cmd, cwd=tests, env=env, stdout=handle, stderr=subprocess.STDOUT)
    seconds = time.monotonic() - started
    outcomes, errors, finished = outcomes_of(read_records(results))
    if not finished and parallel != "1":
        # A worker's exception that cannot be pickled (e.g. a RecursionError) kills the
        # parallel runner: the serial one records it like any other failure.
        say(f"conformance: {name}: runtests.py --parallel={parallel} crashed; again with 1")
        return run_django_tests(tests, name, settings, modules, plans, "1", extra)
    return Run(name, outcomes, errors, seconds, finished, read_records(swaps), log)


def plan_json(tests: Path, mode: str, plans: dict[str, swap.ModulePlan]) -> dict[str, object]:
    return {
        "mode": mode,
        "tests_dir": str(tests),
        "modules": {m: p.to_json() for m, p in plans.items()},
        "files": sorted({s.file for p in plans.values() for s in p.sites}),
    }


def swap_problems(plans: dict[str, swap.ModulePlan], records: list[dict[str, object]]) -> list[str]:
    """Why the swap cannot be trusted: a module with nothing swapped, or not as planned."""
    applied: dict[str, int] = {}
    for record in records:  # a spawned worker imports the models again: count each file once
        applied[str(record["file"])] = int(str(record["swapped"]))
    problems = []
    for module, module_plan in plans.items():
        planned = len(module_plan.swapped)
        files = {s.file for s in module_plan.sites}
        done = sum(applied.get(f, 0) for f in files)
        missing = sorted(f for f in files if f not in applied)
        if planned == 0:
            problems.append(f"{module}: no field could be swapped; it cannot claim coverage")
        elif missing:
            problems.append(f"{module}: never imported through the swap hook: {', '.join(missing)}")
        elif done != planned:
            problems.append(f"{module}: {done} fields swapped, {planned} planned")
    return problems


# Comparing ------------------------------------------------------------------------------------


@dataclass
class Comparison:
    run: int = 0
    passed_django: int = 0
    passed_ours: int = 0
    fail_both: list[str] = field(default_factory=list)
    expected: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    stale: list[tuple[str, str]] = field(default_factory=list)


def compare(
    baseline: dict[str, str],
    ours: dict[str, str],
    expected: dict[str, Entry],
    modules: Iterable[str],
    complete: bool,
) -> Comparison:
    """
    Classify each test of ``ours`` against Django's fields (``baseline``) and the list.

    ``complete``: every test of ``modules`` ran, so a listed test that did not run is stale.
    """
    result = Comparison(run=len(ours))
    result.passed_django = sum(baseline.get(t) in PASSED for t in ours)
    result.passed_ours = sum(o in PASSED for o in ours.values())
    for test, outcome in sorted(ours.items()):
        if outcome not in FAILED:
            continue
        if baseline.get(test) in FAILED:
            result.fail_both.append(test)
        elif test in expected:
            result.expected.append(test)
        else:
            result.unexpected.append(test)
    prefixes = tuple(f"{m}." for m in modules)
    for test in sorted(expected):
        if not test.startswith(prefixes):
            continue
        if test not in ours:
            if complete:
                result.stale.append((test, "did not run"))
        elif ours[test] not in FAILED:
            result.stale.append((test, f"now {ours[test]}"))
        elif baseline.get(test) in FAILED:
            result.stale.append((test, "fails with Django's field too"))
    return result


def first_line(error: str) -> str:
    lines = [line for line in error.strip().splitlines() if line.strip()]
    return lines[-1].strip()[:160] if lines else ""


def summary_lines(mode: str, run: Run, result: Comparison, errors: dict[str, str]) -> list[str]:
    lines = [
        f"{mode}: {result.run} tests in {run.seconds:.0f}s; passed with Django's fields "
        f"{result.passed_django}, with ours {result.passed_ours}; expected failures "
        f"{len(result.expected)}; failing with Django's fields too {len(result.fail_both)}; "
        f"unexpected failures {len(result.unexpected)}; stale entries {len(result.stale)}",
    ]
    lines += [f"  UNEXPECTED {t}: {first_line(errors.get(t, ''))}" for t in result.unexpected]
    lines += [f"  STALE {t}: {why}" for t, why in result.stale]
    return lines


# Command line ---------------------------------------------------------------------------------


def parse(argv: list[str]) -> tuple[argparse.Namespace, list[str]]:
    parser = argparse.ArgumentParser(prog="python -m conformance.runner", description=__doc__)
    parser.add_argument("--mode", choices=(*MODES, "all"), default="all")
    parser.add_argument(
        "--modules",
        nargs="+",
        default=["ci"],
        help="test modules of Django's suite, or a set: ci (default), extended, known",
    )
    parser.add_argument("--parallel", default=str(os.cpu_count() or 1), help="runtests --parallel")
    args, extra = parser.parse_known_args(argv)
    if extra[:1] == ["--"]:
        extra = extra[1:]
    return args, extra


def main(argv: list[str]) -> int:
    import django

    args, extra = parse(argv)
    modules = list(
        dict.fromkeys(m for name in args.modules for m in MODULE_SETS.get(name, (name,)))
    )
    version = django.get_version()
    series = ".".join(version.split(".")[:2])
    modes = MODES if args.mode == "all" else (args.mode,)
    tests = django_tests(version)
    baseline = run_django_tests(
        tests, "django", "conformance.settings_same", modules, None, args.parallel, extra
    )
    say(f"conformance: Django's fields: {len(baseline.outcomes)} tests in {baseline.seconds:.0f}s")
    lines, passed, failed = [], 0, 0
    for mode in modes:
        plans = plan(tests, modules, mode)
        counts = ", ".join(f"{m} {len(p.swapped)}/{len(p.sites)}" for m, p in plans.items())
        say(f"conformance: {mode}: fields swapped per module: {counts}")
        settings = f"conformance.settings_{mode}"
        run = run_django_tests(tests, mode, settings, modules, plans, args.parallel, extra)
        problems = swap_problems(plans, run.swaps)
        if not run.finished:
            problems.append(f"runtests.py did not finish: see {run.log}")
        ours = {t: o for t, o in run.outcomes.items() if t not in FLAKY}
        expected = expected_failures(series, mode)
        result = compare(baseline.outcomes, ours, expected, modules, not extra)
        lines += summary_lines(mode, run, result, run.errors)
        lines += [f"  BROKEN {problem}" for problem in problems]
        passed += result.passed_ours
        failed += len(result.unexpected) + len(result.stale) + len(problems)
    if not baseline.finished:
        lines.append(
            f"  BROKEN runtests.py with Django's fields did not finish: see {baseline.log}"
        )
        failed += 1
    say(f"\nconformance summary (Django {version}, modules: {' '.join(modules)})")
    for line in lines:
        say(line)
    say(f"conformance: {passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
