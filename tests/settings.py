"""Test settings: vicirec's own settings, with VICIdial's database on real MariaDB when reachable.

VICIREC_TEST_VICIDIAL_URL (default mysql://root@127.0.0.1:3306/vicirec_test_vicidial) names the MariaDB
server that holds the tests' VICIdial tables. If nothing answers there the tests fall back to SQLite with a
warning, unless VICIREC_TEST_REQUIRE_MARIADB=1 (set by .ci/run), which makes the fallback an error so CI
never passes without MariaDB. VICIREC_TEST_DATABASE_URL optionally moves vicirec's own test database.
"""

import os
import tempfile
import warnings

os.environ.setdefault("VICIREC_HOME", tempfile.mkdtemp(prefix="vicirec-test-home-"))

from vicirec.config import database_config  # noqa: E402
from vicirec.settings import *  # noqa: E402,F403
from vicirec.settings import DATABASES, VICIREC_HOME  # noqa: E402

VICIDIAL_URL = os.environ.get("VICIREC_TEST_VICIDIAL_URL", "mysql://root@127.0.0.1:3306/vicirec_test_vicidial")
REQUIRE_MARIADB = os.environ.get("VICIREC_TEST_REQUIRE_MARIADB", "") in {"1", "true", "yes"}


def _mariadb_reachable(url: str) -> str | None:
    """None if a MariaDB/MySQL server answers at url, else why not."""
    import MySQLdb

    config = database_config("VICIREC_TEST_VICIDIAL_URL", url)
    try:
        MySQLdb.connect(
            host=config["HOST"] or "127.0.0.1",
            port=int(config["PORT"] or 3306),
            user=config["USER"],
            password=config["PASSWORD"] or "",
            connect_timeout=3,
        ).close()
    except MySQLdb.Error as exc:
        return str(exc)
    return None


_problem = _mariadb_reachable(VICIDIAL_URL)
if _problem is None:
    DATABASES["vicidial"] = database_config(
        "VICIREC_TEST_VICIDIAL_URL", VICIDIAL_URL, engines={"django.db.backends.mysql": "vicirec.db.vicidial_mysql"}
    )
    DATABASES["vicidial"]["OPTIONS"]["charset"] = "utf8"
    VICIDIAL_BACKEND = "mariadb"
elif REQUIRE_MARIADB:
    raise RuntimeError(f"VICIREC_TEST_REQUIRE_MARIADB is set but MariaDB at {VICIDIAL_URL} is unreachable: {_problem}")
else:
    warnings.warn(f"MariaDB unreachable ({_problem}); VICIdial tables fall back to SQLite", stacklevel=1)
    DATABASES["vicidial"] = database_config(
        "VICIREC_TEST_VICIDIAL_URL",
        f"sqlite:///{VICIREC_HOME / 'vicidial-test.sqlite3'}",
        engines={"django.db.backends.sqlite3": "vicirec.db.vicidial_sqlite"},
    )
    VICIDIAL_BACKEND = "sqlite"
DATABASES["vicidial"]["TIME_ZONE"] = "UTC"

if os.environ.get("VICIREC_TEST_DATABASE_URL"):
    DATABASES["default"] = database_config("VICIREC_TEST_DATABASE_URL", os.environ["VICIREC_TEST_DATABASE_URL"])

if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # A file, not memory, so that the crash tests' subprocesses share the test database.
    DATABASES["default"]["TEST"] = {"NAME": str(VICIREC_HOME / "test-vicirec.sqlite3")}

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
VICIREC_SETTLE_SECONDS = 0
# Disk pressure only where a test asks for it, however full the machine running the tests is.
VICIREC_DISK_PRESSURE_PERCENT = 100.0
# The existing tests sign superusers and Legal approvers in with a password (the demo switch); the tests of
# two-factor sign-in turn it off (tests/admin/test_signin.py).
VICIREC_DEMO_NO_2FA = True
