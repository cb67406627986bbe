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
CONTENTTYPES_CACHE: Entry = (
    "ContentType's cache is per database: a generic relation read from the other database "
    "loads its content type there once more, one query Django's count does not expect.",
    "docs/conformance.rst#the-routed-mode",
)
# Defects: remove the entries with the fix.
DEFECT_UNSAVED: Entry = (
    "DEFECT: assigning an unsaved target raises ValueError at assignment; Django allows it, "
    "copies the key once the target is saved, and refuses only save() before that.",
    "docs/conformance.rst#known-defects",
)
DEFECT_CYCLE: Entry = (
    "DEFECT: a CASCADE cycle (a self-referential field) recurses in crossdb.deletion's "
    "collection until RecursionError.",
    "docs/conformance.rst#known-defects",
)
DEFECT_RESTRICT_CASCADE: Entry = (
    "DEFECT: a RESTRICT reached through a cross-database CASCADE is not enforced.",
    "docs/conformance.rst#known-defects",
)
DEFECT_RESTRICT_MESSAGE: Entry = (
    "DEFECT: RestrictedError's message is not Django's (\"Cannot delete some instances of model "
    "'R' because they are referenced through restricted foreign keys: 'A.restrict'.\").",
    "docs/conformance.rst#known-defects",
)
DEFECT_PREFETCH_QUERYSET: Entry = (
    "DEFECT: the forward descriptor's get_prefetch_querysets() returns a PrefetchResult, not a "
    "list of QuerySets, as its first item: code reading its .query breaks.",
    "docs/conformance.rst#known-defects",
)
DEFECT_FORWARD_REFS: Entry = (
    "DEFECT (undiagnosed): loading fixtures with forward references in a TransactionTestCase "
    "fails at commit with IntegrityError: FOREIGN KEY constraint failed.",
    "docs/conformance.rst#known-defects",
)

# Timing-sensitive tests: their outcome is ignored (a loaded CI machine fails them either way).
FLAKY: dict[str, Entry] = {
    "serializers.test_deserialization.TestDeserializer.test_crafted_xml_performance": (
        "Measures a time ratio; fails on a loaded machine with either field.",
        "docs/conformance.rst#reading-the-summary",
    ),
}

# Failing in both modes.
_BOTH: dict[str, Entry] = {
    "delete.tests.DeletionTests.test_can_defer_constraint_checks": AFTER_COMMIT,
    "delete.tests.DeletionTests.test_deletion_order": AFTER_COMMIT,
    "delete.tests.DeletionTests.test_hidden_related": AFTER_COMMIT,
    "delete.tests.DeletionTests.test_instance_update": AFTER_COMMIT,
    "delete.tests.DeletionTests.test_large_delete": AFTER_COMMIT,
    "delete.tests.DeletionTests.test_model_delete_returns_num_rows": AFTER_COMMIT,
    "delete.tests.DeletionTests.test_queryset_delete_returns_num_rows": AFTER_COMMIT,
    "delete.tests.DeletionTests.test_relational_post_delete_signals_happen_before_parent_object": AFTER_COMMIT,
    "delete.tests.FastDeleteTests.test_fast_delete_fk": AFTER_COMMIT,
    "delete.tests.FastDeleteTests.test_fast_delete_large_batch": AFTER_COMMIT,
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
    "many_to_one.tests.ManyToOneTests.test_delete": AFTER_COMMIT,
    "one_to_one.tests.OneToOneTests.test_foreign_key": AFTER_COMMIT,
    "prefetch_related.tests.Ticket21760Tests.test_bug": DEFECT_PREFETCH_QUERYSET,
    "delete.tests.OnDeleteTests.test_restrict": DEFECT_RESTRICT_MESSAGE,
    "delete.tests.OnDeleteTests.test_restrict_multiple": DEFECT_RESTRICT_MESSAGE,
    "delete.tests.OnDeleteTests.test_restrict_path_cascade_indirect_diamond": DEFECT_RESTRICT_MESSAGE,
    "many_to_one.tests.ManyToOneTests.test_add": DEFECT_UNSAVED,
    "many_to_one.tests.ManyToOneTests.test_fk_assignment_and_related_object_cache": DEFECT_UNSAVED,
    "many_to_one.tests.ManyToOneTests.test_save_fk_after_parent_with_non_numeric_pk_set_on_child": DEFECT_UNSAVED,
    "many_to_one.tests.ManyToOneTests.test_save_nullable_fk_after_parent": DEFECT_UNSAVED,
    "many_to_one.tests.ManyToOneTests.test_save_nullable_fk_after_parent_with_to_field": DEFECT_UNSAVED,
    "many_to_one.tests.ManyToOneTests.test_save_parent_after_assign": DEFECT_UNSAVED,
    "model_formsets.test_uuid.InlineFormsetTests.test_inlineformset_factory_ignores_default_pks_on_submit": DEFECT_UNSAVED,
    "model_formsets.test_uuid.InlineFormsetTests.test_inlineformset_factory_nulls_default_pks_alternate_key_relation_data": DEFECT_UNSAVED,
    "model_formsets.tests.ModelFormsetTest.test_inline_formsets_save_as_new": DEFECT_UNSAVED,
    "model_formsets.tests.ModelFormsetTest.test_inline_formsets_with_custom_save_method_related_instance": DEFECT_UNSAVED,
    "one_to_one.tests.OneToOneTests.test_related_object_cache": DEFECT_UNSAVED,
    "one_to_one.tests.OneToOneTests.test_save_nullable_o2o_after_parent": DEFECT_UNSAVED,
    "one_to_one.tests.OneToOneTests.test_unsaved_object": DEFECT_UNSAVED,
    "serializers.test_json.JsonSerializerTestCase.test_serialize_unicode_roundtrip": DEFECT_UNSAVED,
    "serializers.test_jsonl.JsonlSerializerTestCase.test_serialize_unicode_roundtrip": DEFECT_UNSAVED,
    "serializers.test_xml.XmlSerializerTestCase.test_serialize_unicode_roundtrip": DEFECT_UNSAVED,
    "serializers.test_yaml.YamlSerializerTestCase.test_serialize_unicode_roundtrip": DEFECT_UNSAVED,
    "delete.tests.DeletionTests.test_bulk": DELETE_QUERIES,
    "delete.tests.DeletionTests.test_large_delete_related": DELETE_QUERIES,
    "delete.tests.DeletionTests.test_only_referenced_fields_selected": DELETE_QUERIES,
    "delete_regress.tests.SetQueryCountTests.test_set_querycount": DELETE_QUERIES,
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
    "delete_regress.tests.DeleteTests.test_foreign_key_delete_nullifies_correct_columns": AFTER_COMMIT,
    "serializers.test_natural.NaturalKeySerializerTests.test_json_forward_references_fk_errors": DEFECT_CYCLE,
    "serializers.test_natural.NaturalKeySerializerTests.test_json_forward_references_fks": DEFECT_CYCLE,
    "serializers.test_natural.NaturalKeySerializerTests.test_jsonl_forward_references_fk_errors": DEFECT_CYCLE,
    "serializers.test_natural.NaturalKeySerializerTests.test_jsonl_forward_references_fks": DEFECT_CYCLE,
    "serializers.test_natural.NaturalKeySerializerTests.test_python_forward_references_fk_errors": DEFECT_CYCLE,
    "serializers.test_natural.NaturalKeySerializerTests.test_python_forward_references_fks": DEFECT_CYCLE,
    "serializers.test_natural.NaturalKeySerializerTests.test_xml_forward_references_fk_errors": DEFECT_CYCLE,
    "serializers.test_natural.NaturalKeySerializerTests.test_xml_forward_references_fks": DEFECT_CYCLE,
    "serializers.test_natural.NaturalKeySerializerTests.test_yaml_forward_references_fk_errors": DEFECT_CYCLE,
    "serializers.test_natural.NaturalKeySerializerTests.test_yaml_forward_references_fks": DEFECT_CYCLE,
    "delete.tests.OnDeleteTests.test_restrict_path_cascade_indirect": DEFECT_RESTRICT_CASCADE,
    "delete.tests.OnDeleteTests.test_restrict_gfk_no_fast_delete": DEFECT_RESTRICT_MESSAGE,
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
    "prefetch_related.tests.CustomPrefetchTests.test_m2m_through_gfk": CONTENTTYPES_CACHE,
    "prefetch_related.tests.GenericRelationTests.test_reverse_generic_relation": CONTENTTYPES_CACHE,
    "serializers.test_json.JsonSerializerTransactionTestCase.test_forward_refs": DEFECT_FORWARD_REFS,
    "serializers.test_jsonl.JsonSerializerTransactionTestCase.test_forward_refs": DEFECT_FORWARD_REFS,
    "serializers.test_xml.XmlSerializerTransactionTestCase.test_forward_refs": DEFECT_FORWARD_REFS,
    "serializers.test_yaml.YamlSerializerTransactionTestCase.test_forward_refs": DEFECT_FORWARD_REFS,
    "delete.tests.OnDeleteTests.test_restrict_path_cascade_indirect": DEFECT_RESTRICT_MESSAGE,
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
    "serializers.test_natural.NaturalKeySerializerTests.test_xml_natural_key_serializer": TEST_PICKS_DATABASE,
    "serializers.test_natural.NaturalKeySerializerTests.test_xml_serializer_natural_keys": TEST_PICKS_DATABASE,
    "serializers.test_natural.NaturalKeySerializerTests.test_yaml_serializer_natural_keys": TEST_PICKS_DATABASE,
}

# Django 6.0 and 6.1 start from 5.2's lists; a run on them reports what differs.
EXPECTED: dict[tuple[str, str], dict[str, Entry]] = {
    (series, mode): entries
    for series in ("5.2", "6.0", "6.1")
    for mode, entries in (("same", _SAME), ("routed", _ROUTED))
}


def expected_failures(series: str, mode: str) -> dict[str, Entry]:
    """The list for Django ``series`` ("5.2") and ``mode`` ("same" or "routed")."""
    return EXPECTED.get((series, mode), {})
