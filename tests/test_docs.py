"""
Every code example of docs/ and of README.md is run or checked here, so that none can rot.

``test_block`` runs once per literal block of docs/*.rst and per fenced block of README.md
(``tests/docs_examples/blocks.py`` finds them; ``test_docutils_finds_the_same_blocks`` and
``test_markdown_pages_hide_no_block`` prove it misses none). A block is checked

- when ``NAMED`` has a check for its ``:name:`` (in Markdown, a ``<!-- name: ... -->`` line
  above the fence), by that check;
- else by its kind, with no registration: a doctest (``>>>``) runs in the example project,
  with its comments about queries counted per database; a shell block (``sh``, ``console``)
  has every command checked by its program's own parser, and ``manage.py`` commands run in
  the example project; a ``literalinclude`` must resolve, and show a file that a test runs
  (``INCLUDED``).

Any other block fails, naming its page and line: a Python, text or configuration example
needs a name and a check, or to move into a tested file shown with ``literalinclude``.

The examples that use the example project's models run in one subprocess with its settings
(``tests/docs_examples/runner.py``), on fresh databases of the topology under test.
"""

from __future__ import annotations

import ast
import configparser
import inspect
import io
import json
import os
import re
import subprocess
import sys
import tokenize
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.db import models

import crossdb
from crossdb.testing import assert_num_queries_per_db
from tests.docs_examples import commands
from tests.docs_examples.blocks import (
    DOCS,
    MARKDOWN_PAGES,
    REPO,
    Block,
    all_blocks,
    docutils_blocks,
    included_text,
    page_name,
    pages,
)
from tests.docs_examples.databases import example_databases
from tests.docs_examples.runner import exec_settings

Job = dict[str, Any]
SHELL = {"sh", "shell", "bash", "console"}


@dataclass
class Plan:
    """How one block is checked: here (``local``), and in the example project (``jobs``)."""

    local: list[Callable[[Block], None]] = field(default_factory=list)
    jobs: list[Job] = field(default_factory=list)
    needs_database: bool = False


# Generic checks --------------------------------------------------------------------------------


def doctest_plan(namespace: str = "example") -> Callable[[Block], Plan]:
    def plan(block: Block) -> Plan:
        job = {"kind": "doctest", "text": block.text, "namespace": namespace}
        return Plan(jobs=[{**job, "first_line": block.first_line}])

    return plan


def shell_commands(text: str) -> list[commands.Command]:
    """The commands of a shell block; crontab lines (5 schedule fields first) are read as such."""
    system = "/etc/cron.d/" in text or "/etc/crontab" in text
    found: list[commands.Command] = []
    pending = ""
    for raw in text.splitlines():
        if not pending and commands.looks_like_crontab_line(raw):
            for _schedule, command in commands.crontab_entries(raw, system):
                found += commands.parse_lines(command)
            continue
        if raw.rstrip().endswith("\\"):
            pending += raw.rstrip()[:-1] + " "
            continue
        found += commands.parse_lines(pending + raw)
        pending = ""
    return found


def shell_plan(scenario: str | None = None, exits: list[list[int]] | None = None):
    """Every command checked locally; manage.py ones (and what dev.py passes on) run there."""

    def plan(block: Block) -> Plan:
        parsed = shell_commands(block.text)
        forwarded = [
            {
                "argv": command.args if command.program == "manage.py" else command.argv,
                "comment": command.comment,
                "jq": command.piped_into.args[0]
                if command.piped_into and command.piped_into.program == "jq"
                else None,
            }
            for command in parsed
            for command in commands.forwarded(command)
        ]
        for index, expected in enumerate(exits or []):
            forwarded[index]["exits"] = expected

        def check(block: Block) -> None:
            for command in parsed:
                commands.check_locally(command)

        jobs = [{"kind": "commands", "commands": forwarded, "scenario": scenario}]
        return Plan(local=[check], jobs=jobs if forwarded else [])

    return plan


# Files the docs include, and what runs them: a pytest node id, or a job of the runner.
INCLUDED: dict[str, str | Job] = {
    # docs/testing.rst shows its tests (:pyobject: test_...).
    "tests/test_testing.py": "tests/test_testing.py",
    "tests/factories.py": "tests/test_testing.py::TestFactories",
    "tests/test_admin.py": "tests/test_admin.py::TestSearch::test_a_list_filter_by_key",
    # docs/deletion.rst shows its SQLite options, which the concurrent runs need.
    "tests/settings.py": "tests/test_deletion_integrity.py::TestConcurrentRunners",
    # The models of every doctest here, and of tests/test_example_project.py.
    "example_project/employee_app/models.py": "tests/test_example_project.py",
    "example_project/asset_app/models.py": "tests/test_example_project.py",
    "tests/docs_examples/models.py": "tests/test_docs.py::test_block",
    # docs/tutorial.rst shows the queryset combined with model-utils' InheritanceQuerySet.
    "tests/integrity/models.py": "tests/test_queryset.py::TestSpanningLookups",
    "example_project/employee_app/admin.py": {"kind": "example_admin", "scenario": "rollback"},
    "tests/docs_examples/forms.py": {"kind": "forms"},
    "tests/docs_examples/serializers.py": {"kind": "serializers"},
    "tests/docs_examples/routers.py": {"kind": "employee_router"},
    "tests/docs_examples/handkept/employee_app/models.py": (
        "tests/test_docs.py::test_the_hand_kept_integer_migration"
    ),
    "tests/docs_examples/handkept/employee_app/migrations/0002_user_crossdbforeignkey.py": (
        "tests/test_docs.py::test_the_hand_kept_integer_migration"
    ),
}


def node_exists(node_id: str) -> bool:
    """Whether a pytest node id (``path::Class::test``) names a test module's class or test."""
    path, *names = node_id.split("::")
    body = ast.parse((REPO / path).read_text()).body
    for name in names:
        found = [n for n in body if getattr(n, "name", None) == name]
        if not found:
            return False
        body = getattr(found[0], "body", [])
    return Path(path).name.startswith("test_") and all(
        name.startswith(("test_", "Test")) for name in names
    )


def include_plan(block: Block) -> Plan:
    path = (DOCS / block.text).resolve().relative_to(REPO).as_posix()

    def check(block: Block) -> None:
        assert included_text(block).strip(), f"{block.where}: the include shows nothing"
        assert path in INCLUDED, (
            f"{block.where} includes {path}, which INCLUDED does not list: say which test runs it"
        )
        runs = INCLUDED[path]
        if isinstance(runs, str):
            assert node_exists(runs), f"INCLUDED: no test {runs}"
            if runs == path:  # the included object is itself one of the module's tests
                *classes, name = block.options.get("pyobject", "").split(".")
                assert name.startswith("test_"), block.options
                assert all(cls.startswith("Test") for cls in classes), block.options

    runs = INCLUDED.get(path)
    jobs = [{**runs, "id": f"include:{path}"}] if isinstance(runs, dict) else []
    return Plan(local=[check], jobs=jobs)


def unregistered(block: Block) -> None:
    pytest.fail(
        f"{block.where}: a {block.language or block.directive!r} block that no test checks. "
        "Make it a doctest or a shell block, include it from a tested file, or give it a "
        "name (:name:, or in Markdown a <!-- name: ... --> line above the fence) and a check "
        "in NAMED (tests/test_docs.py).",
        pytrace=False,
    )


# Named checks ----------------------------------------------------------------------------------


def settings_plan(compare: bool = True, engines: dict[str, str] | None = None):
    """
    A settings snippet: the example project's settings where ``compare`` (each name equal,
    ``DATABASES`` by alias, or by engine under the environment ``engines``); in the example
    project, the routers place each model as the snippet and its comments say.
    """

    def check(block: Block) -> None:
        snippet = exec_settings(block.text)
        assert snippet, f"{block.where} defines no setting"
        example, _ = commands.example_settings(engines or {})
        for name, value in snippet.items():
            assert name in example, f"the example project has no setting {name}"
            if name == "DATABASES":
                assert list(value) == list(example[name])
                for alias, conf in value.items():
                    if isinstance(conf, dict):
                        assert conf["ENGINE"] == example[name][alias]["ENGINE"], alias
            elif compare:
                assert fits(value, example[name]), (
                    f"{name}: the example project has {example[name]}"
                )

    def plan(block: Block) -> Plan:
        return Plan(local=[check], jobs=[{"kind": "settings_routing", "text": block.text}])

    return plan


def elision_mismatch(shown: list[Any], real: list[Any]) -> int | None:
    """
    ``None`` when ``shown`` is ``real`` with each ``...`` (``Ellipsis``) of ``shown`` standing
    for any items, none or more; else the index in ``shown`` of the first item that does not
    fit. The items between two ``...`` follow each other in ``real``, in order.
    """
    runs: list[tuple[int, list[Any]]] = []  # (index in shown of its first item, items)
    for index, item in enumerate(shown):
        if item is not Ellipsis:
            if index and shown[index - 1] is not Ellipsis:
                runs[-1][1].append(item)
            else:
                runs.append((index, [item]))
    position = 0
    for number, (start, run) in enumerate(runs):
        starts: list[int] = list(range(position, len(real))) if start else [0]
        if number == len(runs) - 1 and shown[-1] is not Ellipsis:  # the run ends the list
            starts = [i for i in starts if i == len(real) - len(run)]
        fitting = [_common_prefix(run, real[i:]) for i in starts]
        if len(run) not in fitting:
            return start + min(max(fitting, default=0), len(run) - 1)
        position = starts[fitting.index(len(run))] + len(run)
    return None


def _common_prefix(first: list[Any], second: list[Any]) -> int:
    count = 0
    for a, b in zip(first, second, strict=False):
        if a != b:
            break
        count += 1
    return count


def fits(shown: Any, real: Any) -> bool:
    """A setting as the docs show it: in a list, ``...`` stands for any items."""
    if isinstance(shown, list) and Ellipsis in shown:
        return isinstance(real, (list, tuple)) and elision_mismatch(shown, list(real)) is None
    return bool(shown == real)


# The models files of the example project, in the order README.md shows their classes.
EXAMPLE_MODELS = ("example_project/employee_app/models.py", "example_project/asset_app/models.py")
LIVES_IN = re.compile(r'^# lives in "(\w+)"$')


def source_lines(source: str) -> list[tuple[int, str, str]]:
    """
    ``(number, code, comment)`` of each line of a Python source but its docstrings' (which an
    excerpt leaves out): the code without its comment nor trailing spaces, "" if there is none.
    """
    docstrings: set[int] = set()
    scopes = (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, scopes) and ast.get_docstring(node, clean=False) is not None:
            first = node.body[0]
            docstrings.update(range(first.lineno, (first.end_lineno or first.lineno) + 1))
    comments = {
        token.start[0]: (token.start[1], token.string)
        for token in tokenize.generate_tokens(io.StringIO(source).readline)
        if token.type == tokenize.COMMENT
    }
    found = []
    for number, line in enumerate(source.splitlines(), 1):
        if number not in docstrings:
            column, comment = comments.get(number, (len(line), ""))
            found.append((number, line[:column].rstrip(), comment))
    return found


def defining_app(class_name: str) -> str:
    """The app of ``EXAMPLE_MODELS`` whose models file defines ``class_name``."""
    for path in EXAMPLE_MODELS:
        if re.search(rf"^class {class_name}\b", (REPO / path).read_text(), re.M):
            return Path(path).parent.name
    raise LookupError(f"no models file of the example project defines {class_name}")


def models_plan(block: Block) -> Plan:
    """
    The example project's models as README.md shows them: each line of the block that is not
    ``...`` (any lines) nor blank (any lines too) is a line of ``EXAMPLE_MODELS``, in order, and
    the lines between two such gaps follow each other there (its blank lines, comment lines
    and docstrings aside). A comment of the block is no source: ``# lives in "alias"`` on a
    class is checked by the routers of the example project, any other comment is an error.
    """
    shown: list[Any] = [...]
    shown_at: dict[int, int] = {}  # index in shown: line of the page
    routes: dict[str, str] = {}
    for number, code, comment in source_lines(block.text):
        line = block.first_line + number - 1
        if comment:
            lives_in = LIVES_IN.match(comment)
            name = re.match(r"class (\w+)\b", code)
            if not (lives_in and name):
                raise ValueError(
                    f"line {line}: no check reads the comment {comment!r} "
                    "(on a class: '# lives in \"alias\"')"
                )
            routes[f"{defining_app(name[1])}.{name[1]}"] = lives_in[1]
        if code.strip() in ("", "..."):
            shown.append(...)
        else:
            shown_at[len(shown)] = line
            shown.append(code)
    shown.append(...)
    real = [
        code
        for path in EXAMPLE_MODELS
        for _number, code, _comment in source_lines((REPO / path).read_text())
        if code
    ]

    def check(block: Block) -> None:
        wrong = elision_mismatch(shown, real)
        if wrong is not None:
            pytest.fail(
                f"{block.page}:{shown_at[wrong]}: {shown[wrong].strip()!r} is not in "
                f"{' + '.join(EXAMPLE_MODELS)} where the block puts it: right after the line "
                "above it, unless a '...' or a blank line comes between",
                pytrace=False,
            )

    return Plan(local=[check], jobs=[{"kind": "model_routes", "routes": routes}] if routes else [])


def check_imports(block: Block) -> None:
    namespace: dict[str, Any] = {}
    exec(block.text, namespace)
    tree = ast.parse(block.text)
    assert all(isinstance(node, (ast.Import, ast.ImportFrom)) for node in tree.body)


EFFECTIVE_DEFAULTS: dict[str, Callable[[Any], Any]] = {
    "database": lambda f: f.database,
    "to_field": lambda f: f.remote_field.field_name,
    "related_name": lambda f: f.remote_field.related_name,
    "related_query_name": lambda f: f.remote_field.related_query_name,
    "null": lambda f: f.null,
    "blank": lambda f: f.blank,
    "db_index": lambda f: f.db_index,
    "db_column": lambda f: f.db_column,
}


def check_signature(block: Block) -> None:
    """A ``Name(args)`` block against ``inspect.signature`` and the defaults in effect."""
    definition = ast.parse(f"def {block.text.strip()}: pass").body[0]
    assert isinstance(definition, ast.FunctionDef)
    cls = getattr(crossdb, definition.name)
    real = inspect.signature(cls)
    arguments = definition.args
    positional = [argument.arg for argument in arguments.args]
    real_positional = [
        p.name for p in real.parameters.values() if p.kind is p.POSITIONAL_OR_KEYWORD
    ]
    assert positional == real_positional[: len(positional)], (positional, real)
    required = [
        p.name
        for p in real.parameters.values()
        if p.default is p.empty and p.kind <= p.KEYWORD_ONLY
    ]
    assert set(required) <= set(positional), f"{real}: {required} are required"
    has_kwargs = any(p.kind is p.VAR_KEYWORD for p in real.parameters.values())
    assert (arguments.kwarg is not None) == has_kwargs, f"**kwargs: {real}"
    instance = cls("auth.User", models.CASCADE)
    for argument, default in zip(arguments.kwonlyargs, arguments.kw_defaults, strict=True):
        documented = ast.literal_eval(default) if default is not None else None
        parameter = real.parameters.get(argument.arg)
        if parameter is not None:
            assert parameter.kind in (parameter.KEYWORD_ONLY, parameter.POSITIONAL_OR_KEYWORD)
            assert parameter.default == documented, f"{argument.arg}: {parameter}"
        else:
            assert has_kwargs, f"{cls.__name__} takes no {argument.arg}"
        effective = EFFECTIVE_DEFAULTS[argument.arg](instance)
        assert effective == documented, f"{argument.arg} is {effective!r} by default"


def check_mixin_first(block: Block) -> None:
    """``class X(Mixin, MyBase): ...``: the mixin's methods win over the base's."""
    from django.contrib import admin
    from rest_framework import serializers

    from crossdb import admin as crossdb_admin
    from crossdb.contrib import rest_framework

    bases = {
        "MyModelAdmin": type("MyModelAdmin", (admin.ModelAdmin,), {}),
        "MyModelSerializer": type("MyModelSerializer", (serializers.ModelSerializer,), {}),
    }
    namespace = {**vars(crossdb_admin), **vars(rest_framework), **bases}
    exec(block.text, namespace)
    (name,) = re.findall(r"^class (\w+)", block.text, re.MULTILINE)
    cls = namespace[name]
    mixin = cls.__mro__[1]
    assert mixin.__name__.endswith("Mixin"), cls.__mro__
    overridden = [
        attribute
        for attribute, value in vars(mixin).items()
        if callable(value) and not attribute.startswith("__")
    ]
    assert overridden
    for attribute in overridden:
        assert getattr(cls, attribute) is getattr(mixin, attribute), attribute


def check_test_databases(block: Block) -> None:
    """The spellings of "every database" that pytest-django and Django's TestCase accept."""
    from django.test import TestCase
    from pytest_django.plugin import validate_django_db

    namespace: dict[str, Any] = {"pytest": pytest, "TestCase": TestCase}
    exec(block.text, namespace)

    def databases(marker: Any) -> Any:
        return validate_django_db(marker)[2]  # (transaction, reset_sequences, databases, ...)

    assert databases(namespace["test_something"].pytestmark[0]) == "__all__"
    assert namespace["EmployeeTests"]._validate_databases() == frozenset(settings.DATABASES)
    for alternative in re.findall(r"# or (databases=.*|\{.*\})", block.text):
        value = ast.literal_eval(alternative.removeprefix("databases="))
        if alternative.startswith("databases="):
            assert databases(pytest.mark.django_db(databases=value).mark) == value
        else:

            class Alternative(TestCase):
                databases = value

            assert Alternative._validate_databases() == value


def check_assertion_text(block: Block) -> None:
    """The AssertionError of assert_num_queries_per_db for the loop without prefetching."""
    from tests.factories import EmployeeFactory
    from tests.hr.models import Employee

    EmployeeFactory.create_batch(3)
    with (
        pytest.raises(AssertionError) as raised,
        assert_num_queries_per_db({"default": 1, "employee": 1}),
    ):
        for employee in Employee.objects.all():
            assert employee.user.username
    got = f"AssertionError: {raised.value}".replace("`", '"')
    # "columns shortened": the docs' "..." stands for a column list.
    pattern = r"\s+".join(
        ".*?".join(map(re.escape, word.split("..."))) for word in block.text.split()
    )
    assert re.fullmatch(pattern, got.strip(), re.DOTALL), got


def check_systemd(block: Block) -> None:
    """Two unit files, each headed by its path: both parse, and the timer starts the service."""
    units = re.split(r"^# (/etc/systemd/system/\S+)\n", block.text, flags=re.MULTILINE)[1:]
    files = dict(zip(units[::2], units[1::2], strict=True))
    assert sorted(Path(name).suffix for name in files) == [".service", ".timer"]
    parsed = {}
    for name, text in files.items():
        parser = configparser.ConfigParser(interpolation=None, strict=True)
        parser.optionxform = str  # type: ignore[assignment,method-assign]
        parser.read_string(text)
        parsed[Path(name).suffix] = parser
    service, timer = parsed[".service"], parsed[".timer"]
    names = sorted(Path(name).stem for name in files)
    assert names[0] == names[1], "a timer starts the service of its own name"
    assert service["Service"]["Type"] == "oneshot"
    assert re.fullmatch(r"\*-\*-\* \d\d:\d\d:\d\d", timer["Timer"]["OnCalendar"])
    assert timer["Install"]["WantedBy"] == "timers.target"
    command = commands.split_commands(service["Service"]["ExecStart"])
    assert [c.program for c in command] == ["manage.py"]


def systemd_plan(block: Block) -> Plan:
    return shell_like_plan(block, check_systemd, re.findall(r"^ExecStart=(.*)$", block.text, re.M))


def cronjob_plan(block: Block) -> Plan:
    """The Kubernetes CronJob: a valid shape, and the command of each of its N pods."""
    import yaml

    document = yaml.safe_load(block.text)
    job = document["spec"]["jobTemplate"]["spec"]
    (container,) = job["template"]["spec"]["containers"]
    script = container["args"][0]
    parts = job["completions"]
    lines = [script.replace("${JOB_COMPLETION_INDEX}", str(index)) for index in range(parts)]

    def check(block: Block) -> None:
        assert document["apiVersion"] == "batch/v1" and document["kind"] == "CronJob"
        (schedule,) = commands.crontab_entries(f"{document['spec']['schedule']} true", False)
        assert schedule
        assert job["completionMode"] == "Indexed" and job["parallelism"] == parts
        assert job["template"]["spec"]["restartPolicy"] in ("Never", "OnFailure")
        assert container["command"] == ["/bin/sh", "-c"]
        assert f'"${{JOB_COMPLETION_INDEX}}/{parts}"' in script, "one part per completion index"

    plan = shell_like_plan(block, check, lines)
    plan.jobs.append({"kind": "partitions", "text": "\n".join(lines), "scenario": "orphan"})
    return plan


def shell_like_plan(block: Block, check: Callable[[Block], None], lines: list[str]) -> Plan:
    """A configuration file's checks, plus its command lines as a shell block of their own."""
    inner = shell_plan()(Block(block.page, block.line, "", "sh", "\n".join(lines)))
    return Plan(local=[check, *inner.local], jobs=inner.jobs)


def check_celery(block: Block) -> None:
    """
    The Celery app: crossdb's tasks found, each beat entry's task registered and its kwargs
    accepted. tests/test_celery.py::test_the_documented_beat_schedule_on_a_prefork_worker runs
    the block itself on a real worker.
    """
    from tests.docs_examples.celery_app import documented_celery_namespace

    assert block.name == "scheduling-celery"
    namespace = documented_celery_namespace()
    app = namespace["app"]
    app.loader.import_default_modules()
    assert {"crossdb.propagate_deletions", "crossdb.start_verification"} <= set(app.tasks)
    for name, entry in app.conf.beat_schedule.items():
        task = app.tasks[entry["task"]]
        inspect.signature(task.run).bind(*entry.get("args", ()), **entry.get("kwargs", {}))
        assert entry["schedule"], name
    assert node_exists(
        "tests/test_celery.py::test_the_documented_beat_schedule_on_a_prefork_worker"
    )


def local(*checks: Callable[[Block], None], database: bool = False) -> Callable[[Block], Plan]:
    return lambda block: Plan(local=list(checks), needs_database=database)


def job(kind: str, **options: Any) -> Callable[[Block], Plan]:
    return lambda block: Plan(jobs=[{"kind": kind, "text": block.text, **options}])


NAMED: dict[str, Callable[[Block], Plan]] = {
    "installation-settings": settings_plan(),
    "readme-models": models_plan,
    "readme-settings": settings_plan(),
    "tutorial-starting-databases": settings_plan(
        engines={"CROSSDB_EXAMPLE_DEFAULT": "postgres", "CROSSDB_EXAMPLE_EMPLOYEE": "mariadb"}
    ),
    "tutorial-routing": settings_plan(),
    "tutorial-creating-rows": job("statements", phase="empty"),
    "fields-imports": local(check_imports),
    "fields-signature": local(check_signature),
    "fields-one-to-one-signature": local(check_signature),
    "fields-joins": job("joins"),
    "fields-manager-examples": doctest_plan("manager"),
    "fields-dangling-message": job(
        "exception_message",
        code='Employee(employee_id="E9999", user_id=424242).user',
        instance_of=[
            "Employee.user.DanglingReference",
            "User.DoesNotExist",
            "Employee.user.RelatedObjectDoesNotExist",
            "crossdb.DanglingReference",
        ],
        attributes=["model", "field", "value", "database"],
    ),
    "prefetch-manager-examples": doctest_plan("manager"),
    "prefetch-filtering": doctest_plan("manager"),
    "prefetch-subqueries": doctest_plan("manager"),
    "prefetch-select-related": doctest_plan("manager"),
    "routers-settings": settings_plan(),
    "routers-model-route": job("settings_routing", expect_model_routes=True),
    "routers-ignore-hints": job("tenant_router"),
    "verifying-output": job("console", scenario="orphan"),
    "verifying-repair": shell_plan(scenario="orphan", exits=[[1], [0]]),
    "verifying-check": job(
        "output_contains", argv=["check", "--database", "employee"], scenario="orphan"
    ),
    "scheduling-systemd": systemd_plan,
    "scheduling-cronjob": cronjob_plan,
    "scheduling-celery": local(check_celery),
    "admin-mixin-first": local(check_mixin_first),
    "admin-serializer-mixin-first": local(check_mixin_first),
    "testing-imports": local(check_imports),
    "testing-databases": local(check_test_databases),
    "testing-assertion-error": local(check_assertion_text, database=True),
}


def plan(block: Block) -> Plan:
    try:
        if block.directive == "literalinclude":
            return include_plan(block)
        if block.name in NAMED:
            return NAMED[block.name](block)
        if block.is_doctest:
            return doctest_plan()(block)
        if block.language in SHELL:
            return shell_plan()(block)
    except Exception as error:  # a block that cannot even be read fails its own test
        message = f"{block.where}: {type(error).__name__}: {error}"
        return Plan(local=[lambda block: pytest.fail(message, pytrace=False)])
    return Plan(local=[unregistered])


BLOCKS = all_blocks()
PLANS = {block: plan(block) for block in BLOCKS}
for _block, _plan in PLANS.items():
    for _index, _job in enumerate(_plan.jobs):
        _job.setdefault("id", f"{_block.where}#{_index}")


# The example project's run ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def example_results(tmp_path_factory) -> dict[str, dict[str, Any]]:
    """Every job of every block, run once in the example project; ``{job id: result}``."""
    directory = tmp_path_factory.mktemp("docs_examples")
    jobs = {job["id"]: job for plan in PLANS.values() for job in plan.jobs}
    (directory / "jobs.json").write_text(json.dumps(list(jobs.values())))
    with example_databases(directory) as env:
        env["DJANGO_SETTINGS_MODULE"] = "tests.docs_examples.settings"
        process = subprocess.run(
            [sys.executable, "-m", "tests.docs_examples.runner", "jobs.json", "results.json"],
            cwd=directory,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
    if process.returncode != 0:
        pytest.fail(f"the docs runner failed:\n{process.stdout}{process.stderr}", pytrace=False)
    return json.loads((directory / "results.json").read_text())


def block_param(block: Block) -> Any:
    marks = []
    if PLANS[block].needs_database:
        marks.append(
            pytest.mark.django_db(databases="__all__", transaction=True, reset_sequences=True)
        )
    return pytest.param(block, id=block.where.removeprefix("docs/"), marks=marks)


@pytest.mark.parametrize("block", [block_param(block) for block in BLOCKS])
def test_block(block: Block, request: pytest.FixtureRequest) -> None:
    planned = PLANS[block]
    for check in planned.local:
        check(block)
    if not planned.jobs:
        return
    results = request.getfixturevalue("example_results")
    failures = [
        f"{job['id']} ({job['kind']}): {results[job['id']]['error']}"
        for job in planned.jobs
        if not results[job["id"]]["ok"]
    ]
    if failures:
        pytest.fail(f"{block.where}:\n" + "\n".join(failures), pytrace=False)


# The guard's own guarantees ----------------------------------------------------------------------


@pytest.mark.parametrize("page", pages(), ids=lambda path: path.name)
def test_docutils_finds_the_same_blocks(page: Path) -> None:
    """docutils, the reference parser, finds no block that tests/docs_examples/blocks.py misses."""
    found = sorted(text for _kind, text in docutils_blocks(page))
    ours = sorted(block.text for block in BLOCKS if block.page.split(" ")[0] == page_name(page))
    assert ours == found


@pytest.mark.parametrize("name", MARKDOWN_PAGES)
def test_markdown_pages_hide_no_block(name: str) -> None:
    """
    No Markdown parser is a test dependency, so the reader's blocks are checked against what
    could make another block: every fence marker opens or closes a block it found, and no line
    outside them is an indented code block (4 spaces or a tab after a blank line) or HTML's
    ``<pre>``.
    """
    lines = (REPO / name).read_text().splitlines()
    inside: set[int] = set()  # 0-based numbers of fence and content lines
    for block in BLOCKS:
        if block.page == name:
            opening = block.line - 1
            fence = lines[opening].strip()[:3]
            closing = next(
                n for n in range(opening + 1, len(lines)) if lines[n].strip().startswith(fence)
            )
            inside.update(range(opening, closing + 1))
    for number, line in enumerate(lines):
        if number in inside:
            continue
        where = f"{name}:{number + 1}"
        assert not re.match(r"^ {0,3}(```|~~~)", line), f"{where}: a fence the reader missed"
        assert "<pre" not in line.lower(), f"{where}: a <pre> block no test checks"
        indented = line.startswith(("    ", "\t")) and line.strip()
        assert not (indented and not lines[number - 1].strip()), (
            f"{where}: an indented code block, which no check reads: fence it"
        )


def test_every_named_check_names_a_block() -> None:
    names = [block.name for block in BLOCKS if block.name]
    assert len(names) == len(set(names)), "a :name: is used twice"
    assert sorted(set(NAMED) - set(names)) == []


def test_every_included_file_is_included() -> None:
    shown = {
        (DOCS / block.text).resolve().relative_to(REPO).as_posix()
        for block in BLOCKS
        if block.directive == "literalinclude"
    }
    assert sorted(set(INCLUDED) - shown) == []


def test_the_hand_kept_integer_migration(tmp_path: Path) -> None:
    """docs/tutorial.rst, "Coming from the hand-kept integer", on a copy of the app."""
    import shutil

    handkept = REPO / "tests" / "docs_examples" / "handkept"
    app = tmp_path / "project" / "employee_app"
    shutil.copytree(handkept / "employee_app", app)
    # Run from the copy: a script's own folder comes first on sys.path.
    shutil.copy(handkept / "check.py", app.parent / "check.py")
    new_migration = app / "migrations" / "0002_user_crossdbforeignkey.py"
    held = new_migration.read_text()
    new_migration.unlink()
    with example_databases(tmp_path) as env:
        env.update(
            DJANGO_SETTINGS_MODULE="tests.docs_examples.handkept.settings",
            PYTHONPATH=os.pathsep.join([str(tmp_path / "project"), env["PYTHONPATH"]]),
        )

        def phase(name: str) -> None:
            result = subprocess.run(
                [sys.executable, "check.py", name],
                cwd=tmp_path / "project",
                env=env,
                capture_output=True,
                text=True,
                timeout=120,
            )
            assert result.returncode == 0 and "OK" in result.stdout, result.stdout + result.stderr

        phase("before")
        shutil.copy(REPO / "example_project" / "employee_app" / "models.py", app / "models.py")
        phase("asks")
        new_migration.write_text(held)
        phase("after")
