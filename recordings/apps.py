from django.apps import AppConfig


class RecordingsConfig(AppConfig):
    name = "recordings"
    verbose_name = "Recordings"

    def ready(self) -> None:
        # The project's configuration checks (vicirec.checks) register on import. The project package is
        # not an installed app, so the app that carries the pipeline loads them; settings import no app code.
        from vicirec import checks  # noqa: F401
