"""
Code copied or adapted from Django notices when Django's original changes.

Each entry fingerprints the original's text (stripped lines, blank lines left out) per
supported Django series, so a patch release that leaves it alone does not fail here. When
one fails: read Django's new original, bring the copy named in the entry up to date, and
record the new fingerprint.
"""

from __future__ import annotations

import hashlib
import inspect

import django
import pytest
from django.db.models.deletion import Collector
from django.db.models.fields.related_descriptors import ForwardManyToOneDescriptor
from django.test import TestCase

SERIES = ".".join(map(str, django.VERSION[:2]))


def block(source: str, start: str) -> str:
    """The lines of ``source`` from ``start`` to the end of the block it opens."""
    lines = source[source.index(start) :].splitlines()
    indent = len(lines[0]) - len(lines[0].lstrip())
    kept = [lines[0]]
    for line in lines[1:]:
        if line.strip() and len(line) - len(line.lstrip()) <= indent:
            break
        kept.append(line)
    return "\n".join(line.strip() for line in kept if line.strip())


def fingerprint(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


COPIES = {
    # crossdb.deletion.raise_if_restricted()
    "Collector.collect(), its 'if fail_on_restricted:' block": (
        lambda: block(inspect.getsource(Collector.collect), "if fail_on_restricted:"),
        {"5.2": "5109bca33a15a373", "6.0": "5109bca33a15a373", "6.1": "5109bca33a15a373"},
    ),
    # crossdb.descriptors._cached_on_ancestor() and CrossDBForwardDescriptor.__get__
    "ForwardManyToOneDescriptor.__get__()": (
        lambda: block(
            inspect.getsource(ForwardManyToOneDescriptor.__get__),
            "def __get__(self, instance, cls=None):",
        ),
        {"5.2": "0ba55d4ca820aef2", "6.0": "c54b6323c977f7af", "6.1": "934600ea632745ab"},
    ),
    # crossdb.testing.capture_on_commit_callbacks()
    "TestCase.captureOnCommitCallbacks()": (
        lambda: block(
            inspect.getsource(TestCase.captureOnCommitCallbacks), "def captureOnCommitCallbacks("
        ),
        {"5.2": "d1c2d03816d61204", "6.0": "d1c2d03816d61204", "6.1": "0e2d4670e8f03359"},
    ),
}


@pytest.mark.parametrize("name", COPIES)
def test_djangos_original_is_unchanged(name):
    original, known = COPIES[name]
    assert SERIES in known, f"No fingerprint of {name} for Django {SERIES}: add one."
    assert fingerprint(original()) == known[SERIES], (
        f"Django {django.get_version()} changed {name}: update crossdb's copy, then the "
        f"fingerprint ({fingerprint(original())})."
    )
