"""Benchmarks of django-crossdb-toolkit against Django's own same-database relations."""
