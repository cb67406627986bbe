class ShadowTableRouter:
    """
    Also migrate ``people.AutoTarget`` on ``employee`` and ``asset``.

    The copies hold rows of their own: a queryset compiled as a subquery against the
    wrong database would read them, so the lookup tests can tell. ``inventory.Label``
    reads the ``employee`` copy through ``database="employee"``.
    """

    def allow_migrate(self, db, app_label, model_name=None, **hints):
        if app_label == "people" and model_name == "autotarget":
            return True
        return None
