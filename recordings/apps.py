from django.apps import AppConfig


class RecordingsConfig(AppConfig):
    name = "recordings"
    verbose_name = "Recordings"

    def ready(self) -> None:
        # The project's configuration checks (vicirec.checks) register on import. The project package is
        # not an installed app, so the app that carries the pipeline loads them; settings import no app code.
        # Users who made history are deactivated, never deleted (the history must keep naming them).
        from django.contrib.auth import get_user_model
        from django.db.models.signals import pre_delete

        from vicirec import checks  # noqa: F401
        from vicirec.records import refuse_deleting_users_with_history

        pre_delete.connect(
            refuse_deleting_users_with_history, sender=get_user_model(), dispatch_uid="vicirec.records.users"
        )
        # A schedule runs only vicirec's own tasks, however it is saved (admin, shell, setup_schedules).
        from django.db.models.signals import pre_save
        from django_q.models import Schedule

        from recordings.ops.schedules import refuse_foreign_schedule

        pre_save.connect(refuse_foreign_schedule, sender=Schedule, dispatch_uid="vicirec.schedules.func")
        # History rows of holds and policies go into the custody ledger, in the transaction that writes them.
        from simple_history.signals import post_create_historical_record

        from recordings import ledger

        post_create_historical_record.connect(ledger.on_history, dispatch_uid="vicirec-custody-ledger")
