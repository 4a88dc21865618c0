"""SQLite backend for the demo VICIdial database, with the same read-only guard as the MySQL one."""

from django.db.backends.sqlite3 import base

from vicirec.db.readonly import ReadOnlyWrapperMixin


class DatabaseWrapper(ReadOnlyWrapperMixin, base.DatabaseWrapper):
    pass
