"""
Run the examples of docs/ and README.md in the example project, as the pages show them.

tests/test_docs.py starts ``python -m tests.docs_examples.runner JOBS RESULTS`` with the
example project's apps importable and ``DJANGO_SETTINGS_MODULE=tests.docs_examples.settings``
(the example project, its admin installed, and the proxies of ``tests.docs_examples.models``).
The databases are the ones the example settings name: fresh SQLite files, or fresh PostgreSQL
and MariaDB databases on the real topology.

In order: migrate every database; run the jobs of phase ``empty`` (the tutorial's "Creating
rows") on the empty databases; flush them; add the demo command's data, which the docs' outputs
assume (``ada``, ``grace``, ``linus``; ``E1001`` to ``E1003``; three assets); run the other jobs.
A job with a ``scenario`` runs inside transactions rolled back on every database afterwards.
RESULTS maps each job's id to ``{"ok": bool, "error": str}``.
"""

from __future__ import annotations

import doctest
import io
import json
import os
import re
import shlex
import sys
import tokenize
import traceback
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager, redirect_stdout
from pathlib import Path
from typing import Any
from unittest import mock

import django

Job = dict[str, Any]

# Query comments --------------------------------------------------------------------------------

NUMBERS = {"no": 0, "one": 1, "two": 2, "three": 3}
QUERY_WORDS = re.compile(r"\bquer(?:y|ies)\b")


def comments(source: str) -> str:
    """The comments of a piece of Python code, joined."""
    found = []
    try:
        for token in tokenize.generate_tokens(io.StringIO(source).readline):
            if token.type == tokenize.COMMENT:
                found.append(token.string.lstrip("#").strip())
    except (tokenize.TokenError, IndentationError):
        pass
    return " ".join(found)


def expected_queries(source: str, aliases: list[str]) -> dict[str, int | None] | None:
    """
    The queries per database a comment promises, or ``None`` when it promises nothing.

    ``# no query``, ``# never a query``; ``# 1 query on default, 1 on employee``;
    ``# 1 query, on employee``; ``# 1 query per database`` (each database once);
    ``# on asset`` (some queries, on asset only); ``# 4 queries: ...`` adds up the parts.
    A comment that speaks of queries in any other way is an error, so that no claim about
    queries goes unchecked.
    """
    comment = comments(source)
    alias_words = "|".join(map(re.escape, aliases))
    if re.search(r"\b(?:no|never a) query\b", comment):
        return {}
    per_database = re.search(r"\b(\d+|one) quer(?:y|ies) per database\b", comment)
    if per_database:
        count = int(NUMBERS.get(per_database[1], per_database[1]))
        return dict.fromkeys(aliases, count)
    items = re.findall(
        rf"(?:\b(\d+|one|two|three)\s+(?:quer(?:y|ies)\s*,?\s*)?)?\bon\s+({alias_words})\b",
        comment,
    )
    if not items:
        if QUERY_WORDS.search(comment):
            raise ValueError(f"a comment about queries this test cannot read: {comment!r}")
        return None
    expected: dict[str, int | None] = {}
    for count, alias in items:
        expected[alias] = int(NUMBERS.get(count, count)) if count else None
    total = re.search(r"\b(\d+) queries:", comment)
    if total and sum(v or 0 for v in expected.values()) != int(total[1]):
        raise ValueError(f"the parts of {comment!r} do not add up to {total[1]}")
    return expected


def query_problem(expected: dict[str, int | None], counts: dict[str, int]) -> str | None:
    for alias, count in counts.items():
        wanted = expected.get(alias, 0)
        if (wanted is None and count == 0) or (wanted is not None and count != wanted):
            shown = {a: ("some" if n is None else n) for a, n in expected.items()}
            return f"queries per database: the comment says {shown or 'none'}, ran {counts}"
    return None


# Doctests --------------------------------------------------------------------------------------


class DocsOutputChecker(doctest.OutputChecker):
    """Whitespace-insensitive, and ``[...]`` (never a bare ``...``) stands for omitted text."""

    def check_output(self, want: str, got: str, optionflags: int) -> bool:
        if super().check_output(want, got, optionflags | doctest.NORMALIZE_WHITESPACE):
            return True
        if "[...]" not in want:
            return False
        pieces = [" ".join(piece.split()) for piece in want.split("[...]")]
        text = " ".join(got.split())
        if not text.startswith(pieces[0]) or not text.endswith(pieces[-1]):
            return False
        position = len(pieces[0])
        for piece in pieces[1:-1]:
            position = text.find(piece, position)
            if position < 0:
                return False
            position += len(piece)
        return position <= len(text) - len(pieces[-1])


class QueryCountingRunner(doctest.DocTestRunner):
    """A doctest runner that also checks each example's comment about queries."""

    def __init__(self) -> None:
        super().__init__(checker=DocsOutputChecker(), optionflags=doctest.NORMALIZE_WHITESPACE)
        self.problems: list[str] = []
        self._capture: Any = None

    def report_start(self, out: Any, test: Any, example: Any) -> None:
        from crossdb.testing import CaptureQueriesPerDatabase

        self._capture = CaptureQueriesPerDatabase().__enter__()

    def _finished(self, test: Any, example: Any) -> None:
        from django.db import connections

        self._capture.__exit__(None, None, None)
        try:
            expected = expected_queries(example.source, list(connections))
        except ValueError as error:
            self.problems.append(f"line {test.lineno + example.lineno + 1}: {error}")
            return
        if expected is None:
            return
        problem = query_problem(expected, self._capture.counts)
        if problem:
            self.problems.append(
                f"line {test.lineno + example.lineno + 1}: {example.source.strip()}\n  {problem}"
                f"\n{self._capture.report()}"
            )

    def report_success(self, out: Any, test: Any, example: Any, got: str) -> None:
        self._finished(test, example)

    def report_failure(self, out: Any, test: Any, example: Any, got: str) -> None:
        self._finished(test, example)
        super().report_failure(out, test, example, got)

    def report_unexpected_exception(self, out: Any, test: Any, example: Any, exc_info: Any) -> None:
        self._finished(test, example)
        super().report_unexpected_exception(out, test, example, exc_info)


def namespace(kind: str) -> dict[str, Any]:
    """What a page's examples take as known: the models and the demo's rows."""
    from asset_app.models import Asset
    from django.contrib.auth.models import User
    from employee_app.models import Employee

    names: dict[str, Any] = {"User": User, "Employee": Employee, "Asset": Asset}
    for user in User.objects.filter(username__in=["ada", "grace", "linus"]):
        names[user.username] = user
    names["employee"] = Employee.objects.get(employee_id="E1001")
    if kind == "manager":
        from tests.docs_examples import models

        names.update(Employee=models.Employee, Asset=models.Asset)
    return names


def run_doctest(job: Job) -> None:
    """The doctest, its line numbers the page's when ``first_line`` says where it starts."""
    names = namespace(job.get("namespace", "example"))
    offset = max(job.get("first_line", 0) - 1, 0)
    test = doctest.DocTestParser().get_doctest(job["text"], names, job["id"], job["id"], offset)
    runner = QueryCountingRunner()
    report: list[str] = []
    runner.run(test, out=report.append, clear_globs=False)
    problems = runner.problems + (["".join(report)] if report else [])
    if problems:
        raise AssertionError("\n".join(problems))


def run_statements(job: Job) -> None:
    """Each top-level statement in turn, checked against its comment about queries."""
    import ast

    from django.db import connections

    from crossdb.testing import CaptureQueriesPerDatabase

    source = job["text"]
    lines = source.splitlines()
    names: dict[str, Any] = {}
    for statement in ast.parse(source).body:
        code = "\n".join(lines[statement.lineno - 1 : statement.end_lineno])
        with CaptureQueriesPerDatabase() as captured:
            exec(compile(code, job["id"], "exec"), names)
        expected = expected_queries(code, list(connections))
        problem = expected is not None and query_problem(expected, captured.counts)
        if problem:
            raise AssertionError(f"{code}\n  {problem}\n{captured.report()}")


# Commands --------------------------------------------------------------------------------------

RUN = {"migrate", "migrate_all", "verify_links", "propagate_deletions", "check", "makemigrations"}


def command_parser(name: str) -> Any:
    from django.core.management import get_commands, load_command_class

    commands = get_commands()
    if name not in commands:
        raise AssertionError(f"manage.py has no command {name!r}")
    return load_command_class(commands[name], name).create_parser("manage.py", name)


def check_comment_options(parser: Any, comment: str) -> None:
    """Options named in a command's comment (``# --plan, --database (repeatable)``) exist."""
    actions = {option: action for action in parser._actions for option in action.option_strings}
    for option, repeatable in re.findall(r"(--[\w-]+)(\s*\(repeatable\))?", comment):
        if option not in actions:
            raise AssertionError(f"the comment names {option}, which the command does not have")
        if repeatable and type(actions[option]).__name__ not in ("_AppendAction", "_ExtendAction"):
            raise AssertionError(f"the comment says {option} is repeatable; it is not")


def run_manage(argv: list[str], comment: str = "", run: bool = True) -> tuple[int, str]:
    from tests.helpers import run_command

    name, *args = argv
    parser = command_parser(name)
    parser.parse_args(args)  # a CommandError for an unknown option or a bad value
    check_comment_options(parser, comment)
    if not run or name not in RUN:
        return 0, ""
    if name == "makemigrations":
        args = [*args, "--check", "--dry-run"]  # never writes into the example project
    result = run_command(name, *args)
    return result.exit_code, result.stdout + result.stderr


def check_create_database(argv: list[str]) -> None:
    """``psql``/``mariadb`` lines: the commands the demo prints for a missing database."""
    from employee_app.management.commands.demo import SERVERS
    from example_project import settings as example

    vendor, conf = {
        "psql": ("postgresql", example.postgres),
        "mariadb": ("mysql", example.mariadb),
    }[argv[0]]
    # The defaults: the docs' databases, not the fresh ones this run points the settings at.
    defaults = {k: v for k, v in os.environ.items() if not k.startswith("CROSSDB_EXAMPLE_")}
    with mock.patch.dict(os.environ, defaults, clear=True):
        hint = SERVERS[vendor][1].format(**conf())
    if shlex.split(hint) != argv:
        raise AssertionError(f"the demo prints {hint!r} for this database, the docs {argv}")


def jq(filter_text: str, output: str) -> None:
    if not re.fullmatch(r"(\.\w+)+", filter_text):
        raise AssertionError(f"no check for the jq filter {filter_text!r}")
    value: Any = json.loads(output)
    for key in filter_text.split(".")[1:]:
        if key not in value:
            raise AssertionError(f"the JSON document has no {key!r}: {sorted(value)}")
        value = value[key]


def run_commands(job: Job) -> None:
    for command in job["commands"]:
        argv = command["argv"]
        if argv[0] in ("psql", "mariadb"):
            check_create_database(argv)
            continue
        code, output = run_manage(argv, command.get("comment", ""), command.get("run", True))
        allowed = command.get("exits") or ([0, 1] if argv[0] == "verify_links" else [0])
        if code not in allowed:
            raise AssertionError(f"manage.py {shlex.join(argv)} exited {code}:\n{output}")
        if command.get("jq"):
            jq(command["jq"], output)


def run_console(job: Job) -> None:
    """``$ python manage.py ...`` lines, each followed by exactly what it prints."""
    sessions: list[tuple[list[str], list[str]]] = []
    for line in job["text"].splitlines():
        if line.startswith("$ "):
            words = shlex.split(line[2:])
            if words[:2] != ["python", "manage.py"]:
                raise AssertionError(f"no check runs {line!r}")
            sessions.append((words[2:], []))
        else:
            sessions[-1][1].append(line)
    for argv, expected in sessions:
        code, output = run_manage(argv)
        got = [line.rstrip() for line in output.rstrip("\n").splitlines()]
        if got != [line.rstrip() for line in expected]:
            raise AssertionError(
                f"manage.py {shlex.join(argv)} printed (exit {code}):\n" + "\n".join(got)
            )


# Named checks, for the blocks no generic check reads ---------------------------------------------

CHECKS: dict[str, Callable[[Job], None]] = {}


def check(function: Callable[[Job], None]) -> Callable[[Job], None]:
    CHECKS[function.__name__] = function
    return function


def normalized(text: str) -> str:
    return " ".join(text.split())


@check
def output_contains(job: Job) -> None:
    """The block is part of what ``job["argv"]`` prints."""
    _code, output = run_manage(job["argv"])
    if normalized(job["text"]) not in normalized(output):
        raise AssertionError(f"manage.py {shlex.join(job['argv'])} printed:\n{output}")


@check
def exception_message(job: Job) -> None:
    """
    ``job["code"]`` raises an exception whose message is the block (maybe with its type), an
    instance of each of ``job["instance_of"]``, with each of ``job["attributes"]``.
    """
    import crossdb

    names = {**namespace(job.get("namespace", "example")), "crossdb": crossdb}
    try:
        exec(job["code"], names)
    except Exception as error:
        shown = normalized(job["text"])
        message = normalized(str(error))
        full = normalized("".join(traceback.format_exception_only(type(error), error)))
        if shown not in (message, full):
            raise AssertionError(f"{job['code']} raised:\n{full}") from error
        for base in job.get("instance_of", []):
            assert isinstance(error, eval(base, names)), f"not a {base}: {type(error).__mro__}"
        for attribute in job.get("attributes", []):
            assert hasattr(error, attribute), f"{type(error).__name__} has no {attribute}"
        return
    raise AssertionError(f"{job['code']} raised nothing")


def exec_settings(text: str) -> dict[str, Any]:
    """A settings snippet run as Python; ``{...}`` and a trailing ``, ...`` stand for the rest."""
    names: dict[str, Any] = {}
    exec(re.sub(r",\s*\.\.\.\s*}", "}", text), names)
    return {name: value for name, value in names.items() if name.isupper()}


def models_for(label: str) -> list[Any]:
    from django.apps import apps

    if "." in label:
        return [apps.get_model(label)]
    return list(apps.get_app_config(label).get_models())


def assert_routed(model: Any, alias: str) -> None:
    from django.conf import settings
    from django.db import router

    label = model._meta.label
    read, write = router.db_for_read(model), router.db_for_write(model)
    assert read == write == alias, f"{label} is routed to {read}/{write}, not {alias}"
    for database in {*settings.DATABASES, alias}:
        allowed = router.allow_migrate(
            database, model._meta.app_label, model_name=model._meta.model_name
        )
        assert allowed == (database == alias), f"{label}: allow_migrate({database!r}) is {allowed}"


@check
def settings_routing(job: Job) -> None:
    """
    With a settings snippet's routers and routes: each route places its models (and any other
    model of a routed app) there only; every model no route names lives in ``default`` only, or
    in the alias of a ``# the rest: "alias"`` comment; each ``"alias": ...,  # label`` comment
    of DATABASES holds.
    """
    from django.apps import apps
    from django.conf import settings
    from django.db import models
    from django.test.utils import isolate_apps, override_settings

    snippet = exec_settings(job["text"])
    routes = snippet.get("CROSSDB_ROUTES", settings.CROSSDB_ROUTES)
    routers = snippet.get("DATABASE_ROUTERS", settings.DATABASE_ROUTERS)
    rest = re.search(r'#\s*the rest:\s*"(\w+)"', job["text"])
    with override_settings(CROSSDB_ROUTES=routes, DATABASE_ROUTERS=routers):
        for alias, label in re.findall(r'^\s*"(\w+)":.*#\s*([\w.]+)\s*$', job["text"], re.M):
            for model in models_for(label):
                assert_routed(model, alias)
        for key, alias in routes.items():
            if "." in key:
                assert_routed(models_for(key)[0], alias)
                continue
            for model in models_for(key):
                if model._meta.label not in routes:
                    assert_routed(model, alias)
            with isolate_apps(apps.get_app_config(key).name):
                meta = type("Meta", (), {"app_label": key})
                other = type("Other", (models.Model,), {"__module__": __name__, "Meta": meta})
                assert_routed(other, alias)
        for model in apps.get_models():
            opts = model._meta
            if opts.app_label in (*routes, "docs_examples", "crossdb") or opts.label in routes:
                continue
            assert_routed(model, rest[1] if rest else "default")


@check
def model_routes(job: Job) -> None:
    """``job["routes"]``, ``{model label: alias}``: the model lives there, and only there."""
    from django.apps import apps

    for label, alias in job["routes"].items():
        assert_routed(apps.get_model(label), alias)


@check
def joins(job: Job) -> None:
    """Each line raises CrossDatabaseJoinError once evaluated, before any query is sent."""
    from crossdb import CrossDatabaseJoinError
    from crossdb.testing import CaptureQueriesPerDatabase

    names = namespace("example")
    for line in filter(None, job["text"].splitlines()):
        with CaptureQueriesPerDatabase() as captured:
            try:
                list(eval(line, names))
            except CrossDatabaseJoinError:
                pass
            else:
                raise AssertionError(f"{line} raised no CrossDatabaseJoinError")
        assert not any(captured.counts.values()), f"{line} sent {captured.counts}"


@check
def tenant_router(job: Job) -> None:
    """``routes_ignore_hints = True`` makes a prefetch ask the routers once for the batch."""
    from django.conf import settings
    from django.contrib.auth.models import User
    from django.test.utils import override_settings
    from employee_app.models import Employee

    names: dict[str, Any] = {}
    exec(job["text"], names)
    asked: list[Any] = []

    class Counting(names["TenantRouter"]):  # type: ignore[misc,name-defined]
        def db_for_read(self, model: Any, **hints: Any) -> None:
            asked.append(model)

    def asked_for_users() -> int:
        asked.clear()
        with override_settings(DATABASE_ROUTERS=[Counting(), *settings.DATABASE_ROUTERS]):
            assert all(e.user for e in Employee.objects.prefetch_related("user"))
        return asked.count(User)

    as_documented = asked_for_users()  # the class attribute as the docs spell it
    Counting.routes_ignore_hints = False
    assert (as_documented, asked_for_users()) == (1, Employee.objects.count())


@check
def partitions(job: Job) -> None:
    """The N parts' JSON documents merge, with merge_reports(), into the whole one."""
    from crossdb.verification import merge_reports

    parts = []
    for line in job["text"].splitlines():
        argv = shlex.split(line)[2:]
        code, output = run_manage(argv)
        assert code in (0, 1), output
        parts.append(json.loads(output))
    code, whole = run_manage(["verify_links", "--format", "json"])
    whole_report = json.loads(whole)
    merged = merge_reports(parts)
    assert whole_report["total_orphans"] == 1, whole_report  # the scenario's orphan
    for key in ("total_orphans", "total_references"):
        assert merged.get(key) == whole_report.get(key), (key, merged, whole_report)
    for ours, theirs in zip(merged["links"], whole_report["links"], strict=True):
        for key in ("link", "checked", "orphans", "sample"):
            assert ours.get(key) == theirs.get(key), (key, ours, theirs)


@check
def example_admin(job: Job) -> None:
    """The example project's EmployeeAdmin: its changelist, and a search by username."""
    from django.contrib.auth.models import User
    from django.test import Client

    client = Client()
    client.force_login(User.objects.create_superuser("docs-admin", password="x"))
    response = client.get("/admin/employee_app/employee/")
    assert response.status_code == 200, response
    rows = [str(e) for e in response.context["cl"].result_list]
    assert sorted(rows) == ["E1001", "E1002", "E1003"], rows
    assert ">ada<" in response.text  # list_display's "user": the target's __str__
    response = client.get("/admin/employee_app/employee/", {"q": "grace"})
    assert [str(e) for e in response.context["cl"].result_list] == ["E1002"]


@check
def forms(job: Job) -> None:
    """docs/admin.rst's EmployeeForm: what its choices and validation cost, and what they say."""
    from crossdb.testing import CaptureQueriesPerDatabase
    from tests.docs_examples.forms import EmployeeForm

    names = namespace("example")
    with CaptureQueriesPerDatabase() as captured:
        choices = [label for _value, label in EmployeeForm().fields["user"].choices][1:]
    assert choices == ["ada", "grace", "linus"] and captured.counts["default"] == 1, captured.counts
    data = {"employee_id": "E2001", "position": "Intern", "user": names["ada"].pk}
    with CaptureQueriesPerDatabase() as captured:
        assert EmployeeForm(data=data).is_valid()
    assert captured.counts["default"] == 2, captured.report()
    form = EmployeeForm(data={**data, "user": 424242})
    assert not form.is_valid()
    assert form.errors["user"][0].startswith("Select a valid choice."), form.errors


@check
def serializers(job: Job) -> None:
    """docs/admin.rst's EmployeeSerializer: no query to serialize, DRF's error for a missing key."""
    from employee_app.models import Employee

    from crossdb.testing import CaptureQueriesPerDatabase
    from tests.docs_examples.serializers import EmployeeSerializer

    employees = list(Employee.objects.all())
    with CaptureQueriesPerDatabase() as captured:
        data = EmployeeSerializer(employees, many=True).data
    assert [row["user"] for row in data] == [e.user_id for e in employees]
    assert captured.counts["default"] == 0, captured.report()
    serializer = EmployeeSerializer(data={"employee_id": "E2002", "position": "x", "user": 42})
    with CaptureQueriesPerDatabase() as captured:
        assert not serializer.is_valid()
    assert captured.counts["default"] == 1, captured.report()
    (error,) = serializer.errors["user"]
    assert (str(error), error.code) == (
        'Invalid pk "42" - object does not exist.',
        "does_not_exist",
    )


@check
def employee_router(job: Job) -> None:
    """
    docs/routers.rst's EmployeeRouter alone: ``employee.user`` reads ``default`` where Django
    would read ``employee``, and ``migrate --database=employee`` would create ``auth_user``.
    """
    from django.contrib.auth.models import User
    from django.db import router
    from django.test.utils import override_settings
    from employee_app.models import Employee

    from crossdb.testing import CaptureQueriesPerDatabase

    with override_settings(DATABASE_ROUTERS=["tests.docs_examples.routers.EmployeeRouter"]):
        employee = Employee.objects.get(employee_id="E1001")
        with CaptureQueriesPerDatabase() as captured:
            assert employee.user.username == "ada"
        assert captured.counts == {"default": 1, "employee": 0, "asset": 0}, captured.counts
        assert router.db_for_read(User, instance=employee) == "employee"
        assert router.allow_migrate("employee", "auth", model_name="user") is True


# Scenarios -------------------------------------------------------------------------------------


@contextmanager
def rolled_back() -> Iterator[None]:
    from django.db import connections, transaction

    with ExitStack() as stack:
        for alias in connections:
            stack.enter_context(transaction.atomic(using=alias))
        yield
        for alias in connections:
            transaction.set_rollback(True, using=alias)


@contextmanager
def scenario(name: str | None) -> Iterator[None]:
    if name is None:
        yield
        return
    from django.db import connections

    with rolled_back():
        if name == "rollback":
            pass
        elif name == "orphan":
            # "after a user was deleted with raw SQL": linus, whose employee is E1003.
            with connections["default"].cursor() as cursor:
                cursor.execute("DELETE FROM auth_user WHERE username = %s", ["linus"])
        else:
            raise ValueError(f"unknown scenario {name!r}")
        yield


# Main ------------------------------------------------------------------------------------------

KINDS: dict[str, Callable[[Job], None]] = {
    "doctest": run_doctest,
    "statements": run_statements,
    "commands": run_commands,
    "console": run_console,
}


def run_job(job: Job) -> dict[str, Any]:
    function = KINDS.get(job["kind"]) or CHECKS[job["kind"]]
    try:
        with scenario(job.get("scenario")), redirect_stdout(io.StringIO()):
            function(job)
    except Exception as error:
        detail = "".join(traceback.format_exception(type(error), error, error.__traceback__))
        message = str(error) if isinstance(error, AssertionError) else detail
        return {"ok": False, "error": message}
    return {"ok": True, "error": ""}


def prepare_databases() -> None:
    from django.conf import settings
    from django.core.management import call_command

    for alias in settings.DATABASES:
        call_command("migrate", database=alias, interactive=False, verbosity=0)


def add_demo_data() -> None:
    from django.conf import settings
    from django.core.management import call_command
    from employee_app.management.commands.demo import Command

    for alias in settings.DATABASES:
        call_command("flush", database=alias, interactive=False, verbosity=0)
    Command().create_sample_data()


def main(jobs_path: str, results_path: str) -> None:
    django.setup()
    from django.test.utils import setup_test_environment

    setup_test_environment()  # the test client's "testserver" host
    jobs = json.loads(Path(jobs_path).read_text())
    results = {}
    prepare_databases()
    for job in jobs:
        if job.get("phase") == "empty":
            results[job["id"]] = run_job(job)
    add_demo_data()
    for job in jobs:
        if job.get("phase") != "empty":
            results[job["id"]] = run_job(job)
    Path(results_path).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main(*sys.argv[1:])
