"""
Every literal block of the docs: ``.. code-block::`` (and its aliases), ``.. literalinclude::``,
``::`` paragraphs, doctest blocks, and the fenced blocks of included Markdown files and of
README.md.

A small line-based reader, so that the test suite needs no Sphinx; ``docutils_blocks()``
parses the same pages with docutils, when it is installed, to prove the reader misses none.
A Markdown block takes its name from an HTML comment on the line above its fence
(``<!-- name: readme-models -->``), which GitHub does not show; it is the ``:name:`` of a
reStructuredText block.
"""

from __future__ import annotations

import ast
import re
import textwrap
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DOCS = REPO / "docs"

CODE_DIRECTIVES = ("code-block", "code", "sourcecode", "literalinclude", "parsed-literal")
DIRECTIVE = re.compile(r"^(?P<indent>\s*)\.\.\s+(?P<name>[\w-]+)::\s*(?P<argument>.*)$")
OPTION = re.compile(r"^\s*:(?P<name>[\w-]+):\s*(?P<value>.*)$")
FENCE = re.compile(r"^(?P<fence>```+|~~~+)\s*(?P<language>[\w-]*)")
MARKDOWN_NAME = re.compile(r"^<!--\s*name:\s*(?P<name>[\w-]+)\s*-->$")
# Markdown pages outside docs/ whose blocks are examples too.
MARKDOWN_PAGES = ("README.md",)


@dataclass(frozen=True)
class Block:
    page: str  # "docs/tutorial.rst", "docs/changelog.rst > CHANGELOG.md" (included), "README.md"
    line: int  # of the directive, or of the paragraph ending in "::"
    directive: str  # code-block, literalinclude, "::", doctest-block, fence, ...
    language: str
    text: str  # the block's dedented content; for literalinclude, its file argument
    options: dict[str, str] = field(default_factory=dict, hash=False, compare=False)
    first_line: int = field(default=0, hash=False, compare=False)  # of the text; 0: unknown

    @property
    def name(self) -> str | None:
        return self.options.get("name")

    @property
    def where(self) -> str:
        return f"{self.page}:{self.line}"

    @property
    def is_doctest(self) -> bool:
        return self.directive == "doctest-block" or (
            self.language in ("pycon", "python", "py", "") and self.text.startswith(">>>")
        )


def indentation(line: str) -> int:
    return len(line) - len(line.lstrip())


def _indented_block(lines: list[str], start: int, deeper_than: int) -> tuple[list[str], int]:
    """The lines from ``start`` indented more than ``deeper_than`` (blank lines included)."""
    end = start
    while end < len(lines) and (not lines[end].strip() or indentation(lines[end]) > deeper_than):
        end += 1
    while end > start and not lines[end - 1].strip():
        end -= 1
    return lines[start:end], end


def _content(lines: list[str]) -> str:
    return textwrap.dedent("\n".join(lines)).strip("\n")


def _first_line(lines: list[str], start: int) -> int:
    """The 1-based number of the first line from ``start`` (0-based) that is not blank."""
    while start < len(lines) - 1 and not lines[start].strip():
        start += 1
    return start + 1


def rst_blocks(page: str, source: str) -> list[Block]:
    lines = source.splitlines()
    found: list[Block] = []
    i = 0
    in_paragraph = False
    while i < len(lines):
        line = lines[i]
        directive = DIRECTIVE.match(line)
        if directive and directive["name"] in CODE_DIRECTIVES:
            indent = indentation(line)
            j = i + 1
            options = {}
            while j < len(lines) and lines[j].strip() and (option := OPTION.match(lines[j])):
                options[option["name"]] = option["value"].strip()
                j += 1
            body, end = _indented_block(lines, j, indent)
            name = directive["name"]
            argument = directive["argument"].strip()
            if name == "literalinclude":
                language, text = options.get("language", "python"), argument
            else:
                language, text = ("" if name == "parsed-literal" else argument), _content(body)
            first = _first_line(lines, j) if name != "literalinclude" else 0
            found.append(Block(page, i + 1, name, language, text, options, first))
            i, in_paragraph = end, False
            continue
        if directive and directive["name"] == "include":
            path = (DOCS / directive["argument"].strip()).resolve()
            if path.suffix == ".md":
                found += markdown_blocks(f"{page} > {path.name}", path.read_text())
            i += 1
            continue
        stripped = line.strip()
        if not stripped:
            in_paragraph = False
            i += 1
            continue
        if stripped.startswith(">>>") and not in_paragraph:
            # A doctest block: a paragraph of its own that starts with ">>>".
            end = i + 1
            while end < len(lines) and lines[end].strip():
                end += 1
            text = _content(lines[i:end])
            found.append(Block(page, i + 1, "doctest-block", "pycon", text, first_line=i + 1))
            i, in_paragraph = end, False
            continue
        if stripped.endswith("::") and not stripped.startswith(".."):
            # A paragraph that introduces a literal block: the next lines indented deeper.
            start = i + 1
            while start < len(lines) and not lines[start].strip():
                start += 1
            paragraph_indent = indentation(line)
            if start < len(lines) and indentation(lines[start]) > paragraph_indent:
                body, end = _indented_block(lines, start, paragraph_indent)
                found.append(Block(page, i + 1, "::", "", _content(body), first_line=start + 1))
                i, in_paragraph = end, False
                continue
        in_paragraph = True
        i += 1
    return found


def markdown_blocks(page: str, source: str) -> list[Block]:
    lines = source.splitlines()
    found = []
    i = 0
    while i < len(lines):
        fence = FENCE.match(lines[i].strip())
        if fence:
            end = i + 1
            while end < len(lines) and not lines[end].strip().startswith(fence["fence"]):
                end += 1
            named = MARKDOWN_NAME.match(lines[i - 1].strip()) if i else None
            options = {"name": named["name"]} if named else {}
            text = _content(lines[i + 1 : end])
            first = _first_line(lines, i + 1)
            found.append(Block(page, i + 1, "fence", fence["language"], text, options, first))
            i = end + 1
            continue
        i += 1
    return found


def pages() -> list[Path]:
    return sorted(DOCS.glob("*.rst"))


def page_name(path: Path) -> str:
    """How a block names its page: the path from the repository's root."""
    return path.relative_to(REPO).as_posix()


def all_blocks() -> list[Block]:
    """The blocks of docs/*.rst, then those of ``MARKDOWN_PAGES``."""
    found = [block for path in pages() for block in rst_blocks(page_name(path), path.read_text())]
    for name in MARKDOWN_PAGES:
        found += markdown_blocks(name, (REPO / name).read_text())
    return found


# literalinclude ---------------------------------------------------------------------------------


def included_text(block: Block) -> str:
    """
    What a ``literalinclude`` shows, with the options the docs use (``pyobject``,
    ``start-at``/``start-after``, ``end-at``/``end-before``, ``lines``, ``dedent``, applied in
    Sphinx's order), or a ``LookupError`` saying which one does not resolve.
    """
    path = (DOCS / block.text).resolve()
    if not path.is_file():
        raise LookupError(f"{block.where}: {block.text} does not exist")
    lines = path.read_text().splitlines()
    options = block.options
    if "pyobject" in options:
        lines = _pyobject_lines(path, lines, options["pyobject"])
    for option, after in (("start-at", False), ("start-after", True)):
        if option in options:
            index = _find(lines, options[option], block, option)
            lines = lines[index + after :]
    for option, keep in (("end-at", True), ("end-before", False)):
        if option in options:
            index = _find(lines, options[option], block, option)
            lines = lines[: index + keep]
    if "lines" in options:
        chosen: list[str] = []
        for part in options["lines"].split(","):
            first, dash, last = part.partition("-")
            end = int(last) if last else (len(lines) if dash else int(first))
            chosen += lines[int(first) - 1 : end]
        lines = chosen
    text = "\n".join(lines)
    if "dedent" in options:
        text = textwrap.dedent(text) if not options["dedent"] else _dedent(text, options["dedent"])
    return text


def _dedent(text: str, amount: str) -> str:
    return "\n".join(line[int(amount) :] for line in text.splitlines())


def _find(lines: list[str], needle: str, block: Block, option: str) -> int:
    for index, line in enumerate(lines):
        if needle in line:
            return index
    raise LookupError(f"{block.where}: :{option}: {needle!r} is not in {block.text}")


def _pyobject_lines(path: Path, lines: list[str], dotted: str) -> list[str]:
    body = ast.parse("\n".join(lines)).body
    node: ast.AST | None = None
    for part in dotted.split("."):
        node = next(
            (
                child
                for child in body
                if isinstance(child, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
                and child.name == part
            ),
            None,
        )
        if node is None:
            raise LookupError(f"{path.name} has no {dotted!r} for :pyobject:")
        body = node.body  # type: ignore[attr-defined]
    assert isinstance(node, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
    first = min([node.lineno, *(d.lineno for d in node.decorator_list)])
    return lines[first - 1 : node.end_lineno]


# docutils, to prove the line-based reader finds every block --------------------------------------


def docutils_blocks(path: Path) -> list[tuple[str, str]]:
    """``(kind, text)`` of every literal and doctest block docutils finds in ``path``."""
    from docutils import nodes
    from docutils.core import publish_doctree
    from docutils.parsers.rst import Directive, directives
    from docutils.parsers.rst.directives.body import CodeBlock

    class LiteralInclude(Directive):
        required_arguments = 1
        final_argument_whitespace = True
        option_spec = {
            name: directives.unchanged
            for name in [
                "pyobject",
                "lines",
                "start-at",
                "start-after",
                "end-at",
                "end-before",
                "dedent",
                "language",
                "caption",
                "name",
                "emphasize-lines",
                "linenos",
                "prepend",
                "append",
            ]
        }

        def run(self):  # type: ignore[no-untyped-def]
            node = nodes.literal_block(self.arguments[0], self.arguments[0])
            node["literalinclude"] = True
            return [node]

    class Ignored(Directive):
        has_content = True
        optional_arguments = 1
        final_argument_whitespace = True
        option_spec = {"parser": directives.unchanged, "maxdepth": int, "caption": str}

        def run(self):  # type: ignore[no-untyped-def]
            return []

    class Include(Ignored):
        def run(self):  # type: ignore[no-untyped-def]
            target = (DOCS / self.arguments[0]).resolve()
            return [
                nodes.literal_block(text, text)
                for block in markdown_blocks(target.name, target.read_text())
                for text in [block.text]
            ]

    class NamedCodeBlock(CodeBlock):
        option_spec = {**CodeBlock.option_spec, "caption": directives.unchanged}

    for name in ("code-block", "sourcecode", "code"):
        directives.register_directive(name, NamedCodeBlock)
    directives.register_directive("literalinclude", LiteralInclude)
    directives.register_directive("toctree", Ignored)
    directives.register_directive("include", Include)
    tree = publish_doctree(
        path.read_text(),
        source_path=str(path),
        settings_overrides={"report_level": 5, "halt_level": 5, "syntax_highlight": "none"},
    )
    found = []
    for node in tree.findall(lambda n: isinstance(n, (nodes.literal_block, nodes.doctest_block))):
        kind = "include" if node.get("literalinclude") else "block"
        found.append((kind, node.astext().strip("\n")))
    return found
