"""The custody ledger, its head, checkpoints and check results; existing records are ledgered once, in order."""

from django.db import migrations, models

from recordings.lib import ledger as chain

# (app, model, kind, recording field): the tables the ledger copies (recordings.ledger.sources).
SOURCES = [
    ("recordings", "RecordingEvent", "custody_event", "recording_id"),
    ("recordings", "AccessEvent", "access", "recording_id"),
    ("retention", "DeletionCertificate", "deletion_certificate", "recording_id"),
    ("holds", "HistoricalLegalHold", "hold_history", None),
    ("retention", "HistoricalRetentionPolicy", "policy_history", None),
    ("retention", "HistoricalPolicyProposal", "proposal_history", None),
]


def _entries(model, kind, recording_field, state, now):
    names = [f.attname for f in model._meta.concrete_fields]
    pk = model._meta.pk.attname
    for row in model.objects.order_by(pk).values(*names).iterator(chunk_size=2000):
        state[0] += 1
        text = chain.canonical({"model": model._meta.label_lower, "row": {n: chain.plain(row[n]) for n in names}})
        content_hash = chain.content_sha256(text)
        entry_hash = chain.entry_sha256(state[0], kind, state[1], content_hash)
        yield dict(
            seq=state[0],
            kind=kind,
            ref=str(row[pk]),
            recording_id=row[recording_field] if recording_field else None,
            at=now,
            content=text,
            content_sha256=content_hash,
            prev_sha256=state[1],
            entry_sha256=entry_hash,
        )
        state[1] = entry_hash


def ledger_existing(apps, schema_editor):
    from django.utils import timezone

    entry = apps.get_model("recordings", "LedgerEntry")
    state, batch, now = [0, chain.GENESIS], [], timezone.now()
    for app, name, kind, recording_field in SOURCES:
        for values in _entries(apps.get_model(app, name), kind, recording_field, state, now):
            batch.append(entry(**values))
            if len(batch) >= 2000:
                entry.objects.bulk_create(batch)
                batch = []
    entry.objects.bulk_create(batch)
    apps.get_model("recordings", "LedgerHead").objects.create(pk=1, count=state[0], head_sha256=state[1])


class Migration(migrations.Migration):
    dependencies = [
        ("recordings", "0007_needs_person"),
        ("holds", "0002_compliance_roles"),
        ("retention", "0003_policyproposal"),
    ]

    operations = [
        migrations.CreateModel(
            name="Checkpoint",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("count", models.PositiveBigIntegerField()),
                ("head_sha256", models.CharField(max_length=64)),
                ("at", models.DateTimeField()),
                ("key_id", models.CharField(max_length=16)),
                ("text", models.TextField(help_text="The signed text, exactly as signed.")),
                ("signature", models.CharField(help_text="Raw Ed25519 signature, hex.", max_length=128)),
                ("object_key", models.CharField(max_length=1024)),
                ("version_id", models.CharField(blank=True, max_length=1024)),
                ("locked_until", models.DateTimeField(blank=True, null=True)),
            ],
            options={
                "ordering": ["-count", "-id"],
                "get_latest_by": "id",
            },
        ),
        migrations.CreateModel(
            name="CustodyCheck",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("at", models.DateTimeField()),
                ("ok", models.BooleanField()),
                ("entries", models.PositiveBigIntegerField(default=0)),
                ("checkpoints", models.PositiveIntegerField(default=0)),
                ("seconds", models.FloatField(default=0)),
                ("first_problem", models.TextField(blank=True)),
                ("problems", models.JSONField(default=list)),
            ],
            options={
                "ordering": ["-at", "-id"],
                "get_latest_by": "id",
            },
        ),
        migrations.CreateModel(
            name="LedgerHead",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("count", models.PositiveBigIntegerField(default=0)),
                (
                    "head_sha256",
                    models.CharField(
                        default="0000000000000000000000000000000000000000000000000000000000000000", max_length=64
                    ),
                ),
            ],
        ),
        migrations.CreateModel(
            name="LedgerEntry",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("seq", models.PositiveBigIntegerField(unique=True)),
                ("kind", models.CharField(max_length=40)),
                ("ref", models.CharField(blank=True, max_length=64)),
                ("recording_id", models.PositiveBigIntegerField(blank=True, null=True)),
                ("at", models.DateTimeField()),
                ("content", models.TextField()),
                ("content_sha256", models.CharField(max_length=64)),
                ("prev_sha256", models.CharField(max_length=64)),
                ("entry_sha256", models.CharField(max_length=64)),
            ],
            options={
                "verbose_name_plural": "ledger entries",
                "ordering": ["seq"],
                "indexes": [
                    models.Index(fields=["kind", "ref"], name="ledger_kind_ref_idx"),
                    models.Index(fields=["recording_id", "seq"], name="ledger_rec_seq_idx"),
                ],
            },
        ),
        migrations.RunPython(ledger_existing, migrations.RunPython.noop),
    ]
