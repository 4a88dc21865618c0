"""VICIdial's database is reached read-only: router, cursor guard, and a permissive version gate."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.db import NotSupportedError, connections
from django.db.backends.mysql.base import DatabaseWrapper as PlainMySQL

from recordings.models import Recording
from recordings.vicidial import RecordingLog, VicidialCampaign
from tests.factories import VicidialData
from vicirec.db.vicidial_mysql.base import DatabaseWrapper as VicidialMySQL
from vicirec.dbrouter import ReadOnlyDatabaseError, VicidialRouter

pytestmark = pytest.mark.django_db(databases=["default", "vicidial"])


def test_vicidial_models_read_from_the_vicidial_alias_and_catalog_from_default():
    router = VicidialRouter()
    assert router.db_for_read(RecordingLog) == "vicidial"
    assert router.db_for_read(Recording) is None


def test_orm_writes_to_vicidial_models_are_refused(vicidial: VicidialData):
    with pytest.raises(ReadOnlyDatabaseError, match="read-only"):
        VicidialCampaign(campaign_id="NEW", campaign_name="x").save()
    with pytest.raises(ReadOnlyDatabaseError):
        VicidialCampaign.objects.create(campaign_id="NEW2")


def test_raw_writes_on_the_vicidial_connection_are_refused(vicidial: VicidialData):
    vicidial.campaign("KEEP")
    with connections["vicidial"].cursor() as cursor:
        for sql in (
            "UPDATE vicidial_campaigns SET campaign_name = 'x'",
            "DELETE FROM vicidial_campaigns",
            "INSERT INTO vicidial_campaigns (campaign_id) VALUES ('Z')",
            "DROP TABLE vicidial_campaigns",
            "  /* sneaky */ TRUNCATE vicidial_campaigns",
            "SELECT * FROM vicidial_campaigns FOR UPDATE",
        ):
            with pytest.raises(ReadOnlyDatabaseError):
                cursor.execute(sql)
        cursor.execute("SELECT campaign_id FROM vicidial_campaigns")
        assert [tuple(row) for row in cursor.fetchall()] == [("KEEP",)]
    assert list(VicidialCampaign.objects.values_list("campaign_id", flat=True)) == ["KEEP"]


def test_vicidial_is_never_migrated():
    router = VicidialRouter()
    assert router.allow_migrate("vicidial", "recordings") is False
    assert router.allow_migrate("default", "recordings", model=RecordingLog) is False
    assert router.allow_migrate("default", "recordings", model=Recording) is None


def _wrapper(cls, version):
    wrapper = cls(
        {**connections["default"].settings_dict, "ENGINE": "django.db.backends.mysql", "NAME": "x"}, alias="gate"
    )
    wrapper.__dict__["mysql_server_data"] = {"version": f"{'.'.join(map(str, version))}-MariaDB"}
    wrapper.__dict__["mysql_is_mariadb"] = True
    wrapper.get_database_version = lambda: version  # the server's answer, as Django reads it
    return wrapper


@pytest.mark.parametrize("version", [(5, 5, 68), (10, 1, 48), (10, 3, 39)])
def test_old_vicidial_servers_pass_the_version_gate_django_would_refuse(version):
    with pytest.raises(NotSupportedError):
        _wrapper(PlainMySQL, version).check_database_version_supported()
    _wrapper(VicidialMySQL, version).check_database_version_supported()  # no error


@pytest.mark.skipif(settings.VICIDIAL_BACKEND != "mariadb", reason="needs the MariaDB server")
def test_vicidial_alias_connects_to_the_real_server_through_the_permissive_backend():
    connection = connections["vicidial"]
    connection.ensure_connection()
    assert isinstance(connection, VicidialMySQL)
    assert connection.mysql_is_mariadb
    assert connection.get_database_version() >= (5, 0)
