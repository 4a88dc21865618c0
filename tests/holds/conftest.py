"""The compliance desk's role fixtures, for the holds tests too."""

from tests.admin.conftest import make_user, roles  # noqa: F401
