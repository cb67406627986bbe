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
from django.contrib.admin.views.main import ChangeList
from django.core.serializers import python as python_serializer
from django.core.serializers import xml_serializer
from django.db.models.deletion import Collector
from django.db.models.fields import related_descriptors
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
    # crossdb.testing.capture_on_commit_callbacks()
    "TestCase.captureOnCommitCallbacks()": (
        lambda: block(
            inspect.getsource(TestCase.captureOnCommitCallbacks), "def captureOnCommitCallbacks("
        ),
        {"5.2": "d1c2d03816d61204", "6.0": "d1c2d03816d61204", "6.1": "0e2d4670e8f03359"},
    ),
}


def source(obj: object) -> str:
    return inspect.getsource(obj)  # type: ignore[arg-type]


def manager_method(name: str) -> str:
    """A method of the RelatedManager that create_reverse_many_to_one_manager() defines."""
    return block(source(related_descriptors.create_reverse_many_to_one_manager), f"def {name}(")


def method(cls: type, name: str) -> str:
    return block(source(getattr(cls, name)), f"def {name}(")


FORWARD = related_descriptors.ForwardManyToOneDescriptor
REVERSE_ONE = related_descriptors.ReverseOneToOneDescriptor

COPIES.update(
    {
        # crossdb.admin.CrossDBChangeList.apply_select_related (its "raise" branch)
        "ChangeList.apply_select_related()": (
            lambda: method(ChangeList, "apply_select_related"),
            {"5.2": "5971e3352148cd1a", "6.0": "5971e3352148cd1a", "6.1": "186fd9f239b6fe9f"},
        ),
        # crossdb.descriptors.CrossDBForwardDescriptor.__get__ and _cached_on_ancestor()
        "ForwardManyToOneDescriptor.__get__()": (
            lambda: method(FORWARD, "__get__"),
            {"5.2": "0ba55d4ca820aef2", "6.0": "c54b6323c977f7af", "6.1": "934600ea632745ab"},
        ),
        # crossdb.descriptors.CrossDBForwardDescriptor.__set__
        "ForwardManyToOneDescriptor.__set__()": (
            lambda: method(FORWARD, "__set__"),
            {"5.2": "18126b91b29fc191", "6.0": "88fb81c709670eb4", "6.1": "88fb81c709670eb4"},
        ),
        # crossdb.descriptors.CrossDBReverseOneToOneDescriptor.fetch_one
        "ReverseOneToOneDescriptor.__get__()": (
            lambda: method(REVERSE_ONE, "__get__"),
            {"5.2": "55d1da2363294c0c", "6.0": "55d1da2363294c0c", "6.1": "3915fbb5e04260ae"},
        ),
        # crossdb.descriptors.create_cross_db_reverse_many_to_one_manager: add, set, _clear
        "create_reverse_many_to_one_manager(): RelatedManager.add()": (
            lambda: manager_method("add"),
            {"5.2": "9729960005bb532d", "6.0": "9729960005bb532d", "6.1": "9729960005bb532d"},
        ),
        "create_reverse_many_to_one_manager(): RelatedManager.set()": (
            lambda: manager_method("set"),
            {"5.2": "2b1fe2d2b5542974", "6.0": "2b1fe2d2b5542974", "6.1": "2b1fe2d2b5542974"},
        ),
        "create_reverse_many_to_one_manager(): RelatedManager._clear()": (
            lambda: manager_method("_clear"),
            {"5.2": "b8925d8fe0938d18", "6.0": "b8925d8fe0938d18", "6.1": "b8925d8fe0938d18"},
        ),
        # crossdb.serialization.CrossDBDeserializerMixin._handle_fk_field_node
        "python.Deserializer._handle_fk_field_node()": (
            lambda: method(python_serializer.Deserializer, "_handle_fk_field_node"),
            {"5.2": "6e2536dbe97b8896", "6.0": "6e2536dbe97b8896", "6.1": "6e2536dbe97b8896"},
        ),
        # crossdb.serialization.CrossDBXMLDeserializerMixin._handle_fk_field_node
        "xml_serializer.Deserializer._handle_fk_field_node()": (
            lambda: method(xml_serializer.Deserializer, "_handle_fk_field_node"),
            {"5.2": "f87e8194849a5f55", "6.0": "a7b24799cabaff91", "6.1": "d33ac2c243500785"},
        ),
    }
)


@pytest.mark.parametrize("name", COPIES)
def test_djangos_original_is_unchanged(name):
    original, known = COPIES[name]
    assert SERIES in known, f"No fingerprint of {name} for Django {SERIES}: add one."
    assert fingerprint(original()) == known[SERIES], (
        f"Django {django.get_version()} changed {name}: update crossdb's copy, then the "
        f"fingerprint ({fingerprint(original())})."
    )
