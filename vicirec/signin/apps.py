from django.apps import AppConfig
from django.contrib.admin.apps import AdminConfig as DjangoAdminConfig


class SigninConfig(AppConfig):
    name = "vicirec.signin"
    label = "signin"
    verbose_name = "Sign-in"

    def ready(self) -> None:
        from vicirec.signin import checks  # noqa: F401  (registers the deploy check)


class AdminConfig(DjangoAdminConfig):
    """django.contrib.admin, whose default site asks for the second factor (vicirec.signin.site)."""

    default_site = "vicirec.signin.site.AdminSite"
