#!/usr/bin/env python
"""Django's command-line utility for vicirec."""

import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "vicirec.settings")
    from django.core.exceptions import ImproperlyConfigured
    from django.core.management import execute_from_command_line

    try:
        execute_from_command_line(sys.argv)
    except ImproperlyConfigured as exc:
        # A wrong setting: one sentence naming the variable, not a traceback.
        sys.stderr.write(f"vicirec: configuration error: {exc}\n")
        sys.exit(2)


if __name__ == "__main__":
    main()
