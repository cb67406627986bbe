"""docs/admin.rst's DRF serializer over the example project's Employee."""

from employee_app.models import Employee

from crossdb.contrib.rest_framework import CrossDBModelSerializer


class EmployeeSerializer(CrossDBModelSerializer):
    class Meta:
        model = Employee
        fields = ["id", "employee_id", "position", "user"]
