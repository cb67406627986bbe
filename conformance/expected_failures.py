"""
Tests of Django's suite expected to fail with our fields, per Django series and mode.

Each entry: ``"module.tests.Class.test_name": (reason, "docs/<page>.rst#<section>")``; the
section states the behaviour (docs/conformance.rst explains each reason). A reason starting
with ``DEFECT:`` is a library bug, not a design decision: remove its entries with the fix (the
runner reports an entry whose test passes as stale, and fails).

Only tests that pass with Django's own fields are listed: one failing with both is not ours.
"""

from __future__ import annotations

Entry = tuple[str, str]

# Design: what a relation across two databases cannot do, documented as such.
JOIN: Entry = (
    "Joins are refused: the test follows the relation in SQL (select_related(), a filter, "
    "values(), ordering or an aggregate through it), which raises CrossDatabaseJoinError.",
    "docs/fields.rst#joins",
)
AFTER_COMMIT: Entry = (
    "on_delete is applied after commit: the CASCADE / SET_NULL / SET_DEFAULT / SET() effects "
    "(and their rows in delete()'s counts and signals) come once the deletion commits, which "
    "a TestCase never does.",
    "docs/deletion.rst#guarantees",
)
DELETE_QUERIES: Entry = (
    "on_delete emulation runs its own queries (dependents read in the source's database, the "
    "crossdb.PendingPropagation row) and defers the cascade's: Django's query count differs.",
    "docs/deletion.rst#cost",
)
TARGET_DB: Entry = (
    "The target is read from the database the routers give for its model, never from the "
    "database the source row came from: the test puts both in a database chosen with using().",
    "docs/fields.rst#which-database-the-target-is-read-from",
)
FIELD_CLASS: Entry = (
    "The test checks that the field's class is exactly models.ForeignKey; ours is a subclass.",
    "docs/conformance.rst#what-is-swapped",
)
# The routed mode: the test assumes one database.
TEST_PICKS_DATABASE: Entry = (
    "The test chooses the database itself (using=, .using(), deserialize()'s default alias) for "
    "a model the routed mode placed in the other database.",
    "docs/conformance.rst#the-routed-mode",
)
QUERIES_ELSEWHERE: Entry = (
    "The test reads the queries of the default connection only (connection.queries, "
    "CaptureQueriesContext(connection)), and the routed queries ran on the other database.",
    "docs/conformance.rst#the-routed-mode",
)
TWO_STEPS: Entry = (
    "select_related() through a cross-database field is a second step on the library's "
    "querysets: one query per database per batch of keys where Django's join is one query, and "
    "the test counts the queries.",
    "docs/prefetch.rst#select-related-across-databases",
)
ONE_CONNECTION: Entry = (
    "The test opens its transaction and disables constraint checks on the default connection "
    "only (transaction.atomic(), connection.constraint_checks_disabled()); the routed mode "
    "writes the model's rows in the other database, where neither applies.",
    "docs/conformance.rst#the-routed-mode",
)
CONTENTTYPES_CACHE: Entry = (
    "ContentType's cache is per database: a generic relation read from the other database "
    "loads its content type there once more, one query Django's count does not expect.",
    "docs/conformance.rst#the-routed-mode",
)
# Defects: none known. A reason starting with "DEFECT:" marks a library bug (remove its
# entries with the fix).

# Timing-sensitive tests: their outcome is ignored (a loaded CI machine fails them either way).
FLAKY: dict[str, Entry] = {
    "serializers.test_deserialization.TestDeserializer.test_crafted_xml_performance": (
        "Measures a time ratio; fails on a loaded machine with either field.",
        "docs/conformance.rst#reading-the-summary",
    ),
}

# Failing in both modes.
_BOTH: dict[str, Entry] = {
    "delete.tests.FastDeleteTests.test_fast_delete_fk": AFTER_COMMIT,
    "delete.tests.FastDeleteTests.test_fast_delete_large_batch": AFTER_COMMIT,
    "many_to_one.tests.ManyToOneTests.test_delete": AFTER_COMMIT,
    "delete.tests.DeletionTests.test_only_referenced_fields_selected": DELETE_QUERIES,
    "model_formsets.tests.ModelFormsetTest.test_foreign_keys_in_parents": FIELD_CLASS,
    "delete.tests.FastDeleteTests.test_fast_delete_aggregation": JOIN,
    "delete.tests.FastDeleteTests.test_fast_delete_empty_no_update_can_self_select": JOIN,
    "delete.tests.FastDeleteTests.test_fast_delete_full_match": JOIN,
    "delete.tests.FastDeleteTests.test_fast_delete_joined_qs": JOIN,
    "delete_regress.tests.DeleteTests.test_meta_ordered_delete": JOIN,
    "delete_regress.tests.DeleteTests.test_self_reference_with_through_m2m_at_second_level": JOIN,
    "delete_regress.tests.Ticket19102Tests.test_ticket_19102_annotate": JOIN,
    "delete_regress.tests.Ticket19102Tests.test_ticket_19102_defer": JOIN,
    "delete_regress.tests.Ticket19102Tests.test_ticket_19102_extra": JOIN,
    "delete_regress.tests.Ticket19102Tests.test_ticket_19102_select_related": JOIN,
    "many_to_one.tests.ManyToOneTests.test_multiple_foreignkeys": JOIN,
    "many_to_one.tests.ManyToOneTests.test_reverse_selects": JOIN,
    "many_to_one.tests.ManyToOneTests.test_selects": JOIN,
    "one_to_one.tests.OneToOneTests.test_filter_one_to_one_relations": JOIN,
    "one_to_one.tests.OneToOneTests.test_manager_get": JOIN,
    "one_to_one.tests.OneToOneTests.test_o2o_primary_key_delete": JOIN,
    "prefetch_related.tests.CustomPrefetchTests.test_custom_qs": JOIN,
}
_SAME: dict[str, Entry] = {
    **_BOTH,
    "delete.tests.FastDeleteTests.test_fast_delete_combined_relationships": DELETE_QUERIES,
    "prefetch_related.tests.NullableTest.test_traverse_nullable": JOIN,
    "prefetch_related.tests.PrefetchRelatedTests.test_foreign_key_then_m2m": JOIN,
    "prefetch_related.tests.PrefetchRelatedTests.test_reverse_one_to_one_then_m2m": JOIN,
    "serializers.test_json.JsonSerializerTestCase.test_serialize_prefetch_related_m2m": JOIN,
    "serializers.test_json.JsonSerializerTestCase.test_serialize_prefetch_related_m2m_with_natural_keys": JOIN,
    "serializers.test_jsonl.JsonlSerializerTestCase.test_serialize_prefetch_related_m2m": JOIN,
    "serializers.test_jsonl.JsonlSerializerTestCase.test_serialize_prefetch_related_m2m_with_natural_keys": JOIN,
    "serializers.test_xml.XmlSerializerTestCase.test_serialize_prefetch_related_m2m": JOIN,
    "serializers.test_xml.XmlSerializerTestCase.test_serialize_prefetch_related_m2m_with_natural_keys": JOIN,
    "serializers.test_yaml.YamlSerializerTestCase.test_serialize_prefetch_related_m2m": JOIN,
    "serializers.test_yaml.YamlSerializerTestCase.test_serialize_prefetch_related_m2m_with_natural_keys": JOIN,
    "prefetch_related.tests.MultiDbTests.test_using_is_honored_custom_qs": TARGET_DB,
    "prefetch_related.tests.MultiDbTests.test_using_is_honored_fkey": TARGET_DB,
}
_ROUTED: dict[str, Entry] = {
    **_BOTH,
    "delete.tests.DeletionTests.test_can_defer_constraint_checks": AFTER_COMMIT,
    "delete.tests.DeletionTests.test_deletion_order": AFTER_COMMIT,
    "delete.tests.DeletionTests.test_hidden_related": AFTER_COMMIT,
    "delete.tests.DeletionTests.test_instance_update": AFTER_COMMIT,
    "delete.tests.DeletionTests.test_large_delete": AFTER_COMMIT,
    "delete.tests.DeletionTests.test_model_delete_returns_num_rows": AFTER_COMMIT,
    "delete.tests.DeletionTests.test_queryset_delete_returns_num_rows": AFTER_COMMIT,
    "delete.tests.DeletionTests.test_relational_post_delete_signals_happen_before_parent_object": AFTER_COMMIT,
    "delete.tests.OnDeleteTests.test_auto": AFTER_COMMIT,
    "delete.tests.OnDeleteTests.test_auto_nullable": AFTER_COMMIT,
    "delete.tests.OnDeleteTests.test_cascade": AFTER_COMMIT,
    "delete.tests.OnDeleteTests.test_cascade_from_child": AFTER_COMMIT,
    "delete.tests.OnDeleteTests.test_cascade_from_parent": AFTER_COMMIT,
    "delete.tests.OnDeleteTests.test_cascade_nullable": AFTER_COMMIT,
    "delete.tests.OnDeleteTests.test_o2o_setnull": AFTER_COMMIT,
    "delete.tests.OnDeleteTests.test_restrict_path_cascade_direct": AFTER_COMMIT,
    "delete.tests.OnDeleteTests.test_setdefault": AFTER_COMMIT,
    "delete.tests.OnDeleteTests.test_setdefault_none": AFTER_COMMIT,
    "delete.tests.OnDeleteTests.test_setnull": AFTER_COMMIT,
    "delete.tests.OnDeleteTests.test_setnull_from_child": AFTER_COMMIT,
    "delete.tests.OnDeleteTests.test_setnull_from_parent": AFTER_COMMIT,
    "delete.tests.OnDeleteTests.test_setvalue": AFTER_COMMIT,
    "delete_regress.tests.DeleteCascadeTests.test_fk_to_m2m_through": AFTER_COMMIT,
    "delete_regress.tests.DeleteCascadeTests.test_generic_relation_cascade": AFTER_COMMIT,
    "delete_regress.tests.ProxyDeleteTest.test_delete_concrete_parent": AFTER_COMMIT,
    "delete_regress.tests.ProxyDeleteTest.test_delete_proxy": AFTER_COMMIT,
    "delete_regress.tests.ProxyDeleteTest.test_delete_proxy_of_proxy": AFTER_COMMIT,
    "delete_regress.tests.ProxyDeleteTest.test_delete_proxy_pair": AFTER_COMMIT,
    "one_to_one.tests.OneToOneTests.test_foreign_key": AFTER_COMMIT,
    "delete.tests.OnDeleteTests.test_restrict_path_cascade_indirect_diamond": AFTER_COMMIT,
    "delete.tests.DeletionTests.test_bulk": DELETE_QUERIES,
    "delete.tests.DeletionTests.test_large_delete_related": DELETE_QUERIES,
    "delete_regress.tests.SetQueryCountTests.test_set_querycount": DELETE_QUERIES,
    "prefetch_related.tests.CustomPrefetchTests.test_m2m_through_gfk": CONTENTTYPES_CACHE,
    "prefetch_related.tests.GenericRelationTests.test_reverse_generic_relation": CONTENTTYPES_CACHE,
    "serializers.test_json.JsonSerializerTransactionTestCase.test_forward_refs": ONE_CONNECTION,
    "serializers.test_jsonl.JsonSerializerTransactionTestCase.test_forward_refs": ONE_CONNECTION,
    "serializers.test_xml.XmlSerializerTransactionTestCase.test_forward_refs": ONE_CONNECTION,
    "serializers.test_yaml.YamlSerializerTransactionTestCase.test_forward_refs": ONE_CONNECTION,
    "delete.tests.OnDeleteTests.test_restrict_path_cascade_indirect": AFTER_COMMIT,
    "delete.tests.DeletionTests.test_proxied_model_duplicate_queries": DELETE_QUERIES,
    "prefetch_related.tests.MultiTableInheritanceTest.test_child_link_prefetch": QUERIES_ELSEWHERE,
    "prefetch_related.tests.PrefetchRelatedTests.test_m2m_then_m2m_object_ids": QUERIES_ELSEWHERE,
    "prefetch_related.tests.PrefetchRelatedTests.test_m2m_then_reverse_one_to_one_object_ids": QUERIES_ELSEWHERE,
    "prefetch_related.tests.MultiDbTests.test_using_is_honored_custom_qs": TEST_PICKS_DATABASE,
    "serializers.test_json.JsonSerializerTestCase.test_helpful_error_message_for_many2many_natural1": TEST_PICKS_DATABASE,
    "serializers.test_jsonl.JsonlSerializerTestCase.test_helpful_error_message_for_many2many_natural1": TEST_PICKS_DATABASE,
    "serializers.test_natural.NaturalKeySerializerTests.test_json_serializer_natural_keys": TEST_PICKS_DATABASE,
    "serializers.test_natural.NaturalKeySerializerTests.test_jsonl_serializer_natural_keys": TEST_PICKS_DATABASE,
    "serializers.test_natural.NaturalKeySerializerTests.test_python_serializer_natural_keys": TEST_PICKS_DATABASE,
    "serializers.test_natural.NaturalKeySerializerTests.test_xml_serializer_natural_keys": TEST_PICKS_DATABASE,
    "serializers.test_natural.NaturalKeySerializerTests.test_yaml_serializer_natural_keys": TEST_PICKS_DATABASE,
}

# Tests Django 6.1 added, and tests that pass there but not on 5.2.
_NEW_IN_6_1: dict[str, dict[str, Entry]] = {
    "same": {
        "many_to_one.tests.ManyToOneTests.test_joined_extra": JOIN,
        "many_to_one.tests.ManyToOneTests.test_joined_sql": JOIN,
        "prefetch_related.tests.MultiDbTests"
        ".test_forward_fk_prefetch_custom_queryset_uses_parent_database": TARGET_DB,
    },
    "routed": {
        "many_to_one.tests.ManyToOneTests.test_joined_extra": JOIN,
        "many_to_one.tests.ManyToOneTests.test_joined_sql": JOIN,
        "prefetch_related.tests.MultiDbTests"
        ".test_forward_fk_prefetch_custom_queryset_uses_parent_database": TEST_PICKS_DATABASE,
        "prefetch_related.tests.MultiDbTests"
        ".test_reverse_o2o_prefetch_custom_queryset_uses_parent_database": TEST_PICKS_DATABASE,
    },
}
_PASSING_SINCE_6_1: dict[str, set[str]] = {
    "same": set(),
    "routed": set(),
}


# Django's select_related modules, run in the routed mode (their models get a CrossDBManager).
_SELECT_RELATED_ROUTED: dict[str, Entry] = {
    **{
        f"select_related.tests.SelectRelatedTests.{name}": TWO_STEPS
        for name in (
            "test_access_fks_with_select_related",
            "test_certain_fields",
            "test_chaining",
            "test_field_traversal",
            "test_list_with_depth",
            "test_list_with_select_related",
            "test_more_certain_fields",
        )
    },
    **{
        f"select_related_onetoone.tests.ReverseSelectRelatedTestCase.{name}": TWO_STEPS
        for name in (
            "test_back_and_forward",
            "test_basic",
            "test_follow_from_child_class",
            "test_follow_inheritance",
            "test_follow_next_level",
            "test_follow_two",
            "test_follow_two_next_level",
            "test_forward_and_back",
            "test_missing_reverse",
            "test_nullable_missing_reverse",
            "test_nullable_relation",
        )
    },
    "select_related_regress.tests.SelectRelatedRegressTests.test_regression_10733": TWO_STEPS,
    "select_related_regress.tests.SelectRelatedRegressTests.test_null_join_promotion": JOIN,
    "select_related_regress.tests.SelectRelatedRegressTests.test_regression_7110": JOIN,
}


def _entries(series: str, mode: str) -> dict[str, Entry]:
    entries = dict(_SAME if mode == "same" else _ROUTED)
    if mode == "routed":
        entries.update(_SELECT_RELATED_ROUTED)
    if series == "6.1":
        entries.update(_NEW_IN_6_1[mode])
        for name in _PASSING_SINCE_6_1[mode]:
            entries.pop(name)
    return entries


# Django 6.0 starts from 5.2's lists (no run of it is recorded yet); 6.1's were run.
EXPECTED: dict[tuple[str, str], dict[str, Entry]] = {
    (series, mode): _entries(series, mode)
    for series in ("5.2", "6.0", "6.1")
    for mode in ("same", "routed")
}


def expected_failures(series: str, mode: str) -> dict[str, Entry]:
    """The list for Django ``series`` ("5.2") and ``mode`` ("same" or "routed")."""
    return EXPECTED.get((series, mode), {})
