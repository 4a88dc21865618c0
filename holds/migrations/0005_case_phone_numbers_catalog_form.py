"""Case phone numbers in the catalog's form, added beside the values as they were stored.

Cases used to store phone numbers as typed and split at spaces, so ``(773) 555-7219`` became the two values
``(773)`` and ``555-7219`` and matched nothing. Each case keeps every value it had (so no held recording
stops being held: a value is only ever added, which widens a case) and gains the catalog form of what its
values write (``7735557219``), including two neighbours that only make a number together.
"""

from django.conf import settings
from django.db import migrations

from recordings.lib import phones


def add_catalog_forms(apps, schema_editor):
    Case = apps.get_model("holds", "Case")
    for case in Case.objects.exclude(phone_numbers=[]).iterator():
        values = [str(v) for v in case.phone_numbers or []]
        repaired = phones.repaired(values, settings.VICIREC_PHONE_REGION)
        if repaired != values:
            Case.objects.filter(pk=case.pk).update(phone_numbers=repaired)


class Migration(migrations.Migration):
    dependencies = [("holds", "0004_partial_release_deletion_gate")]

    operations = [migrations.RunPython(add_catalog_forms, migrations.RunPython.noop)]
