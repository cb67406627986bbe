import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

import crossdb


class Migration(migrations.Migration):
    dependencies = [
        ("employee_app", "0001_initial"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        # The column becomes the plain indexed integer a CrossDBForeignKey to User.id is.
        migrations.AlterField("employee", "user_id", models.IntegerField(db_index=True)),
        # Django now knows the column as the relation; the database is left alone.
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.RemoveField("employee", "user_id"),
                migrations.AddField(
                    "employee",
                    "user",
                    crossdb.CrossDBForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="employees",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
            ],
        ),
    ]
