from django.apps import AppConfig


class RecordingsConfig(AppConfig):
    name = "recordings"
    verbose_name = "Recordings"

    def ready(self) -> None:
        # The project's configuration checks (vicirec.checks) register on import. The project package is
        # not an installed app, so the app that carries the pipeline loads them; settings import no app code.
        # History rows of holds and policies go into the custody ledger, in the transaction that writes them.
        from simple_history.signals import post_create_historical_record

        from recordings import ledger
        from vicirec import checks  # noqa: F401

        post_create_historical_record.connect(ledger.on_history, dispatch_uid="vicirec-custody-ledger")
