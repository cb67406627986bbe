from django.apps import AppConfig


class EmployeeAppConfig(AppConfig):
    name = "employee_app"
