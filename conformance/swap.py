"""
Which ``models.ForeignKey`` / ``models.OneToOneField`` of Django's test models become ours.

Pure functions over source text, no Django import: the runner plans here, and the import
hook (``conformance.harness``) applies the same plan while the test app's models module is
imported, so what is swapped is decided once and counted twice.

A call site keeps Django's field when our field cannot take its arguments
(``parent_link=True``, ``db_constraint=True``, ``**kwargs`` we cannot read) or when it is a
hop of a ``ManyToManyField`` (an explicit ``through`` model: every many-to-many query joins
through it). In the routed mode the models of a module are split between two databases so
that every swapped relation crosses them; a relation that cannot cross (to ``"self"``, an odd
cycle, a parent link, a many-to-many) keeps Django's field and both ends share a database.
"""

from __future__ import annotations

import ast
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

FIELDS = {"ForeignKey": "CrossDBForeignKey", "OneToOneField": "CrossDBOneToOneField"}
SWAP_IMPORT = "crossdb"
EXTERNAL = "<external>"  # models of other apps (auth.User, ContentType...): "default"
DEFAULT, OTHER = "default", "other"


@dataclass(frozen=True)
class Site:
    """One ``models.ForeignKey(...)`` / ``models.OneToOneField(...)`` call."""

    file: str  # relative to the tests/ directory
    line: int
    col: int
    kind: str  # "ForeignKey" or "OneToOneField"
    owner: str  # the class whose body holds the call
    target: str  # a model of this module, or EXTERNAL
    problem: str = ""  # why our field cannot take it ("" if it can)


@dataclass
class ModelClass:
    name: str
    bases: list[str]
    abstract: bool = False
    proxy: bool = False
    m2m: list[str] = field(default_factory=list)  # targets of ManyToManyField / GenericRelation
    through: list[str] = field(default_factory=list)


@dataclass
class ModulePlan:
    """What to swap in one test module, and (routed) where each of its models lives."""

    module: str
    sites: list[Site]
    swapped: list[Site]
    kept: dict[Site, str]  # site -> reason it keeps Django's field
    routes: dict[str, str] = field(default_factory=dict)  # "module.Model" -> alias

    def to_json(self) -> dict[str, object]:
        return {
            "module": self.module,
            "swap": [[s.file, s.line, s.col, s.kind] for s in self.swapped],
            "routes": self.routes,
        }


def model_files(tests_dir: Path, module: str) -> list[Path]:
    """``<module>/models.py``, or every file of a ``<module>/models/`` package."""
    single = tests_dir / module / "models.py"
    if single.exists():
        return [single]
    return sorted((tests_dir / module / "models").glob("*.py"))


def _field_kind(func: ast.expr) -> str | None:
    is_models_attribute = isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name)
    if is_models_attribute and func.value.id == "models" and func.attr in FIELDS:  # type: ignore[attr-defined]
        return func.attr  # type: ignore[attr-defined,no-any-return]
    return None


def _name(node: ast.expr | None) -> str:
    """A model reference as written: Name, "string", or dotted attribute."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{_name(node.value)}.{node.attr}"
    return "?"


def _keyword(call: ast.Call, name: str) -> ast.expr | None:
    return next((k.value for k in call.keywords if k.arg == name), None)


def _is_true(node: ast.expr | None) -> bool:
    return isinstance(node, ast.Constant) and node.value is True


def _problem(call: ast.Call) -> str:
    if any(k.arg is None for k in call.keywords) or any(
        isinstance(a, ast.Starred) for a in call.args
    ):
        return "arguments passed with * or ** (cannot tell what our field would get)"
    if _is_true(_keyword(call, "parent_link")):
        return "parent_link=True (CrossDBOneToOneField cannot be a parent link)"
    if _is_true(_keyword(call, "db_constraint")):
        return "db_constraint=True (our field never creates a constraint)"
    on_delete = _keyword(call, "on_delete") or (call.args[1] if len(call.args) > 1 else None)
    if _name(on_delete).rsplit(".", 1)[-1].startswith("DB_"):
        return "on_delete=DB_* (a database-level policy: crossdb.E005 refuses it)"
    return ""


def _meta_flags(cls: ast.ClassDef) -> tuple[bool, bool]:
    abstract = proxy = False
    for node in cls.body:
        if isinstance(node, ast.ClassDef) and node.name == "Meta":
            for stmt in node.body:
                if isinstance(stmt, ast.Assign) and _is_true(stmt.value):
                    names = {t.id for t in stmt.targets if isinstance(t, ast.Name)}
                    abstract = abstract or "abstract" in names
                    proxy = proxy or "proxy" in names
    return abstract, proxy


def _scan(source: str, file: str) -> tuple[dict[str, ModelClass], list[tuple[Site, str]]]:
    """The classes of one file and its field calls (with the target as written)."""
    tree = ast.parse(source, filename=file)
    classes: dict[str, ModelClass] = {}
    calls: list[tuple[Site, str]] = []
    for cls in tree.body:
        if not isinstance(cls, ast.ClassDef):
            continue
        abstract, proxy = _meta_flags(cls)
        model = ModelClass(cls.name, [_name(b) for b in cls.bases], abstract, proxy)
        classes[cls.name] = model
        for node in ast.walk(cls):
            if not isinstance(node, ast.Call):
                continue
            kind = _field_kind(node.func)
            target = _name(node.args[0] if node.args else _keyword(node, "to"))
            if kind is not None:
                site = Site(file, node.lineno, node.col_offset, kind, cls.name, "", _problem(node))
                calls.append((site, target))
            elif _name(node.func) in ("models.ManyToManyField", "GenericRelation"):
                model.m2m.append(target)
                through = _keyword(node, "through")
                if through is not None:
                    model.through.append(_name(through))
    return classes, calls


def _resolve(ref: str, owner: str, module: str, classes: dict[str, ModelClass]) -> str:
    if ref == "self":
        return owner
    label, _, name = ref.rpartition(".")
    if label in ("", module) and name in classes:
        return name
    return EXTERNAL


class _Groups:
    """Union-find over model names: models that must share a database."""

    def __init__(self) -> None:
        self.parent: dict[str, str] = {}

    def find(self, name: str) -> str:
        self.parent.setdefault(name, name)
        while self.parent[name] != name:
            self.parent[name] = self.parent[self.parent[name]]
            name = self.parent[name]
        return name

    def union(self, a: str, b: str) -> None:
        self.parent[self.find(a)] = self.find(b)


def _concrete_children(classes: dict[str, ModelClass]) -> dict[str, list[str]]:
    """For each class, the concrete models (itself included) that inherit its fields."""
    result: dict[str, list[str]] = {}
    for name in classes:
        found, todo = [], [name]
        while todo:
            current = todo.pop()
            if not classes[current].abstract:
                found.append(current)
            todo += [c for c, m in classes.items() if current in m.bases]
        result[name] = sorted(set(found))
    return result


def _two_colours(nodes: set[str], edges: list[tuple[str, str]]) -> dict[str, str]:
    """Colour groups default/other so that as many edges as possible join two colours."""
    neighbours: dict[str, list[str]] = {n: [] for n in nodes}
    for a, b in edges:
        neighbours[a].append(b)
        neighbours[b].append(a)
    colour: dict[str, str] = {}
    starts = sorted(nodes, key=lambda n: (n != EXTERNAL, n))
    for start in starts:
        if start in colour:
            continue
        colour[start] = DEFAULT
        queue = deque([start])
        while queue:
            node = queue.popleft()
            for other in neighbours[node]:
                if other not in colour:
                    colour[other] = OTHER if colour[node] == DEFAULT else DEFAULT
                    queue.append(other)
    return colour


def plan_module(module: str, sources: dict[str, str], mode: str) -> ModulePlan:
    """Plan one test module; ``sources`` maps a file (relative to tests/) to its text."""
    classes: dict[str, ModelClass] = {}
    calls: list[tuple[Site, str]] = []
    for file, source in sorted(sources.items()):
        file_classes, file_calls = _scan(source, file)
        classes.update(file_classes)
        calls += file_calls
    sites = [
        Site(
            s.file, s.line, s.col, s.kind, s.owner, _resolve(t, s.owner, module, classes), s.problem
        )
        for s, t in calls
    ]
    through = {_resolve(t, m.name, module, classes) for m in classes.values() for t in m.through}
    kept: dict[Site, str] = {}
    for site in sites:
        if site.problem:
            kept[site] = site.problem
        elif site.owner in through:
            kept[site] = "field of a ManyToManyField's through model (every M2M query joins it)"
    if mode == "same":
        swapped = [s for s in sites if s not in kept]
        return ModulePlan(module, sites, swapped, kept)
    return _plan_routed(module, classes, sites, kept)


def _plan_routed(
    module: str, classes: dict[str, ModelClass], sites: list[Site], kept: dict[Site, str]
) -> ModulePlan:
    groups = _Groups()
    groups.find(EXTERNAL)
    children = _concrete_children(classes)
    for model in classes.values():
        groups.find(model.name)
        for base in model.bases:  # multi-table inheritance and proxies share a table chain
            if base in classes and not classes[base].abstract:
                groups.union(model.name, base)
        for target in model.m2m + model.through:
            for source in children[model.name]:
                groups.union(source, _resolve(target, model.name, module, classes))

    def edges(site: Site) -> list[tuple[str, str]]:
        owners = children.get(site.owner, [site.owner])
        return [(groups.find(o), groups.find(site.target)) for o in owners]

    for site in sites:
        if site in kept:
            for a, b in edges(site):
                groups.union(a, b)
    candidates = [s for s in sites if s not in kept]
    crossing = [e for s in candidates for e in edges(s) if e[0] != e[1]]
    colour = _two_colours({groups.find(n) for n in [*classes, EXTERNAL]}, crossing)
    swapped = []
    for site in candidates:
        if all(colour[a] != colour[b] for a, b in edges(site)):
            swapped.append(site)
        else:
            kept[site] = "both ends must share a database (self, cycle or many-to-many)"
    routes = {
        f"{module}.{name}": colour[groups.find(name)]
        for name, model in sorted(classes.items())
        if not model.abstract and colour[groups.find(name)] != DEFAULT
    }
    return ModulePlan(module, sites, swapped, kept, routes)


# Django's select_related modules test select_related() itself, which a cross-database field
# follows (in a second step) on the library's querysets only: there, each model that declares
# no manager of its own gets ``objects = crossdb.CrossDBManager()``.
MANAGER_MODULES = frozenset({"select_related", "select_related_onetoone", "select_related_regress"})


def rewrite(
    source: str, file: str, swap: set[tuple[int, int]], manager: bool = False
) -> tuple[ast.Module, int]:
    """The module's AST with the planned call sites swapped, and how many were."""
    tree = ast.parse(source, filename=file)
    count = 0
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            kind = _field_kind(node.func)
            if kind is not None and (node.lineno, node.col_offset) in swap:
                node.func = ast.copy_location(
                    ast.Attribute(ast.Name(SWAP_IMPORT, ast.Load()), FIELDS[kind], ast.Load()),
                    node.func,
                )
                count += 1
    if count and manager:
        for cls in ast.walk(tree):
            if isinstance(cls, ast.ClassDef) and _is_model(cls) and not _declares_manager(cls):
                cls.body.insert(0, _manager_assignment())
    if count:
        index = _after_future_imports(tree)
        tree.body.insert(index, ast.Import([ast.alias(SWAP_IMPORT)]))
    ast.fix_missing_locations(tree)
    return tree, count


def _is_model(cls: ast.ClassDef) -> bool:
    """A model class of a test app's models module (its bases name a model or a Model)."""
    return any("Model" in ast.unparse(base) for base in cls.bases) or bool(cls.bases)


def _declares_manager(cls: ast.ClassDef) -> bool:
    for stmt in cls.body:
        if isinstance(stmt, ast.Assign) and isinstance(stmt.value, ast.Call):
            called = ast.unparse(stmt.value.func)
            if "Manager" in called or "manager" in called:
                return True
    return False


def _manager_assignment() -> ast.Assign:
    call = ast.Call(
        ast.Attribute(ast.Name(SWAP_IMPORT, ast.Load()), "CrossDBManager", ast.Load()), [], []
    )
    return ast.Assign([ast.Name("objects", ast.Store())], call)


def _after_future_imports(tree: ast.Module) -> int:
    index = 0
    for i, stmt in enumerate(tree.body):
        if i == 0 and isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant):
            index = 1
        elif isinstance(stmt, ast.ImportFrom) and stmt.module == "__future__":
            index = i + 1
    return index
