"""Django's XML format; natural keys of cross-database fields are read on their database."""

from django.core.serializers import xml_serializer as django_format

from crossdb.serialization import CrossDBXMLDeserializerMixin

Serializer = django_format.Serializer


class Deserializer(CrossDBXMLDeserializerMixin, django_format.Deserializer):
    pass
