"""The desk's roles and disposition review: every role reads batches, items and decisions; deciding is the
Legal approver's (retention.approve_policy_override, checked by the domain, no permission of its own)."""

from django.db import migrations

VIEW = ["view_dispositionbatch", "view_dispositionitem", "view_dispositiondecision"]
ROLES = {"Legal": VIEW, "Legal approver": VIEW, "Ops": VIEW, "Auditor": VIEW}


def grant(apps, schema_editor):
    from django.contrib.auth.management import create_permissions

    app_config = apps.get_app_config("retention")
    models_module = getattr(app_config, "models_module", None)
    app_config.models_module = models_module or True
    try:
        create_permissions(app_config, apps=apps, verbosity=0)
    finally:
        app_config.models_module = models_module
    Permission = apps.get_model("auth", "Permission")
    Group = apps.get_model("auth", "Group")
    for role, codenames in ROLES.items():
        group = Group.objects.filter(name=role).first()
        if group is not None:
            group.permissions.add(*Permission.objects.filter(content_type__app_label="retention", codename__in=codenames))


def revoke(apps, schema_editor):
    Permission = apps.get_model("auth", "Permission")
    Group = apps.get_model("auth", "Group")
    for role, codenames in ROLES.items():
        group = Group.objects.filter(name=role).first()
        if group is not None:
            group.permissions.remove(
                *Permission.objects.filter(content_type__app_label="retention", codename__in=codenames)
            )


class Migration(migrations.Migration):
    dependencies = [("retention", "0008_disposition_review"), ("holds", "0002_compliance_roles")]
    operations = [migrations.RunPython(grant, revoke)]
