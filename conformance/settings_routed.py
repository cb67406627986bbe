"""
Settings for Django's runtests.py, every swapped relation across two databases.

``conformance.harness.ConformanceRouter`` puts each test model where the plan says: the two
ends of a swapped relation never share a database.
"""

from conformance.settings_same import *  # noqa: F403

DATABASE_ROUTERS = ["conformance.harness.ConformanceRouter"]
