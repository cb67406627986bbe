"""Django's YAML format; natural keys of cross-database fields are read on their database."""

from django.core.serializers import pyyaml as django_format

from crossdb.serialization import CrossDBDeserializerMixin

Serializer = django_format.Serializer


class Deserializer(CrossDBDeserializerMixin, django_format.Deserializer):
    pass
