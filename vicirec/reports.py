"""What a stage or an operations command reports about one run, in one shape.

Commands print ``as_dict()`` as JSON, django-q stores it as the task's result and the logs show it, so its
keys and values are an interface that monitoring and people rely on. A report is a dataclass that inherits
Report; ``as_dict()`` is ``dataclasses.asdict(self)`` with two adjustments a report may declare:

* ``limits``: lists that may grow with the size of a run (errors, ids) are cut to a fixed length, so the
  printed and stored result stays bounded however badly a run went; the object itself keeps every item;
* ``derived()``: values computed from the fields (properties), added after the fields.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, ClassVar


class Report:
    """Base of the report dataclasses: ``@dataclass class SyncReport(Report): ...``.

    Cut lists by naming them in the class statement: ``class CleanupReport(Report, limits={"errors": 20})``
    keeps the first 20 errors in ``as_dict()``. Not a dataclass itself, so it adds no fields.
    """

    _limits: ClassVar[Mapping[str, int]] = MappingProxyType({})

    def __init_subclass__(cls, *, limits: Mapping[str, int] | None = None, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if limits is not None:
            cls._limits = MappingProxyType({**cls._limits, **limits})

    def as_dict(self) -> dict[str, Any]:
        """The fields (nested dataclasses, lists and dicts copied), listed lists cut, then derived values."""
        data = dataclasses.asdict(self)  # type: ignore[call-overload]
        for name, limit in self._limits.items():
            data[name] = data[name][:limit]
        data.update(self.derived())
        return data

    def derived(self) -> dict[str, Any]:
        """Values computed from the fields that ``as_dict()`` adds after them; none by default."""
        return {}
