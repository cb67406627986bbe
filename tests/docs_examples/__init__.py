"""
What tests/test_docs.py needs to run every code example of docs/.

- ``blocks``: finds every literal block of docs/*.rst (and of the Markdown files they include)
  and every fenced block of README.md, with its page, line, language and name;
- ``runner``: runs, in a subprocess configured as the example project, the examples that use
  its models (doctests, shell commands, their printed output);
- ``commands``: the shell command lines of the docs, split and checked against the parsers of
  the programs they run;
- the modules shown by the docs with ``literalinclude`` (``models``, ``routers``, ``forms``,
  ``serializers``) and the hand-kept-integer project under ``handkept/``.
"""
