"""
docs/tutorial.rst's starting point and its migration to a CrossDBForeignKey, run for real.

``employee_app/`` is the app before the change: the hand-kept ``user_id`` (``models.py``) and
its initial migration; ``0002_user_crossdbforeignkey.py`` is the docs' hand-written migration.
``check.py`` runs in a copy of this app, first as it is (``before``), then with the example
project's ``models.py`` and the new migration (``after``).
"""
