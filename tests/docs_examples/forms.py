"""docs/admin.rst's ModelForm over the example project's Employee."""

from django import forms
from employee_app.models import Employee


class EmployeeForm(forms.ModelForm):
    class Meta:
        model = Employee
        fields = ["employee_id", "position", "user"]
