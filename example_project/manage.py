#!/usr/bin/env python3
"""Django's command-line utility for the django-crossdb-toolkit example project."""

import os
import sys
from pathlib import Path


def main() -> None:
    # Use the library from this checkout even when it is not installed.
    sys.path.insert(1, str(Path(__file__).resolve().parent.parent / "src"))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "example_project.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
