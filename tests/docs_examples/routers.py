"""docs/routers.rst's hand-written router, which knows only its own app."""


class EmployeeRouter:
    def db_for_read(self, model, **hints):
        if model._meta.app_label == "employee_app":
            return "employee"
        return None

    def db_for_write(self, model, **hints):
        if model._meta.app_label == "employee_app":
            return "employee"
        return None

    def allow_migrate(self, db, app_label, model_name=None, **hints):
        if app_label == "employee_app":
            return db == "employee"
        return None
