"""Send VICIdial's models to the read-only "vicidial" alias; never write to it, never migrate it."""

from __future__ import annotations

from typing import Any

VICIDIAL_ALIAS = "vicidial"


class ReadOnlyDatabaseError(RuntimeError):
    """Something tried to write to VICIdial's database, which vicirec only ever reads."""


def is_vicidial_model(model: Any) -> bool:
    return bool(getattr(model, "vicidial_table", False))


class VicidialRouter:
    def db_for_read(self, model: Any, **hints: Any) -> str | None:
        return VICIDIAL_ALIAS if is_vicidial_model(model) else None

    def db_for_write(self, model: Any, **hints: Any) -> str | None:
        if is_vicidial_model(model):
            raise ReadOnlyDatabaseError(
                f"refusing to write {model._meta.db_table}: VICIdial's database is read-only for vicirec"
            )
        return None

    def allow_relation(self, obj1: Any, obj2: Any, **hints: Any) -> bool | None:
        if is_vicidial_model(obj1) != is_vicidial_model(obj2):
            return False
        return None

    def allow_migrate(self, db: str, app_label: str, model_name: str | None = None, **hints: Any) -> bool | None:
        if db == VICIDIAL_ALIAS:
            return False
        model = hints.get("model")
        if model is not None and is_vicidial_model(model):
            return False
        return None
