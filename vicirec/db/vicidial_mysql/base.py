"""MySQL/MariaDB backend for VICIdial's database: read-only, and no minimum server version.

Django 5.2 refuses MariaDB < 10.5 and MySQL < 8.0.11, but many live VICIdial servers run MariaDB 5.5/10.x
or MySQL 5.x. vicirec only issues plain SELECTs there, which every one of those versions runs.
"""

from django.db.backends.mysql import base

from vicirec.db.readonly import ReadOnlyWrapperMixin


class DatabaseWrapper(ReadOnlyWrapperMixin, base.DatabaseWrapper):
    def check_database_version_supported(self) -> None:
        """Accept any server version (the version gate is Django's, for its own DDL features)."""
