"""
Django's built-in serialization formats, with deserializers that read natural foreign keys
of cross-database fields on the target's database (see ``crossdb.serialization``).
"""
