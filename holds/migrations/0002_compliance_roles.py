"""The four roles of the compliance desk (docs/compliance-desk.md), as groups with their permissions.

Legal: cases, holds (place), playback, evidence export, history. Legal approver: Legal plus releasing holds
and changing retention policies, including overrides below a record class's legal minimum. Ops: pipeline
status and policies as proposals (a change that shortens retention is filed as a PolicyProposal that a Legal
approver approves or rejects), no playback.
Auditor: read-only everything, including history, access events and deletion certificates; no playback.

Re-running it (``create_roles(apps, None)``) brings existing groups back to exactly these permissions.
"""

from django.db import migrations

VIEW_CATALOG = [
    "recordings.view_campaign",
    "recordings.view_recording",
    "recordings.view_recordingevent",
    "holds.view_case",
    "holds.view_legalhold",
    "retention.view_retentionpolicy",
    "retention.view_deletioncertificate",
    "retention.view_policyproposal",
]
VIEW_PIPELINE = [
    "django_q.view_schedule",
    "django_q.view_success",
    "django_q.view_failure",
    "django_q.view_ormq",
]
LEGAL = VIEW_CATALOG + [
    "recordings.view_accessevent",
    "recordings.play_recording",
    "recordings.export_evidence",
    "holds.add_case",
    "holds.change_case",
    "holds.add_legalhold",
]
ROLES = {
    "Legal": LEGAL,
    "Legal approver": LEGAL
    + [
        "holds.release_legalhold",
        "retention.add_retentionpolicy",
        "retention.change_retentionpolicy",
        "retention.approve_policy_override",
        "retention.add_policyproposal",
        "retention.change_policyproposal",
    ],
    "Ops": VIEW_CATALOG
    + VIEW_PIPELINE
    + ["retention.add_retentionpolicy", "retention.change_retentionpolicy", "retention.add_policyproposal"],
    "Auditor": VIEW_CATALOG + VIEW_PIPELINE + ["recordings.view_accessevent"],
}
# Not declared in a model's Meta (retention's models are not the desk's to change): created here.
EXTRA_PERMISSIONS = [
    (
        "retention",
        "retentionpolicy",
        "approve_policy_override",
        "Can approve retention shorter than before or below the legal minimum",
    )
]


def create_roles(apps, schema_editor):
    from django.contrib.auth.management import create_permissions

    for app_config in apps.get_app_configs():
        models_module = getattr(app_config, "models_module", None)
        app_config.models_module = models_module or True  # historical app configs: create permissions now
        try:
            create_permissions(app_config, apps=apps, verbosity=0)
        finally:
            app_config.models_module = models_module
    ContentType = apps.get_model("contenttypes", "ContentType")
    Permission = apps.get_model("auth", "Permission")
    Group = apps.get_model("auth", "Group")
    for app_label, model, codename, name in EXTRA_PERMISSIONS:
        content_type, _ = ContentType.objects.get_or_create(app_label=app_label, model=model)
        Permission.objects.get_or_create(content_type=content_type, codename=codename, defaults={"name": name})
    for role, names in ROLES.items():
        group, _ = Group.objects.get_or_create(name=role)
        permissions = []
        for name in names:
            app_label, codename = name.split(".")
            permissions.append(Permission.objects.get(content_type__app_label=app_label, codename=codename))
        group.permissions.set(permissions)


def remove_roles(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name__in=list(ROLES)).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("django_q", "0019_alter_task_options_alter_ormq_key_alter_ormq_lock_and_more"),
        ("holds", "0001_initial"),
        ("recordings", "0003_accessevent"),
        ("retention", "0003_policyproposal"),
    ]

    operations = [migrations.RunPython(create_roles, remove_roles)]
