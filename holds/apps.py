from django.apps import AppConfig


class HoldsConfig(AppConfig):
    name = "holds"
    verbose_name = "Legal holds"

    def ready(self) -> None:
        from holds import guards

        guards.connect()  # what an active hold covers only grows, whoever changes it
