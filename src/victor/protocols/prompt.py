"""What prompt contributors are given."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from pydantic import BaseModel, Field, model_validator

from victor.protocols.tenancy import tenant_of


class PromptContext(BaseModel, Mapping[str, Any]):
    """The turn a system prompt is built for.

    It behaves like a read-only mapping, so ``context.get("tenant_id")`` works: keys are
    the fields below, then the session's config, then ``extra``. The tenant is the
    session's (``acme:s1`` belongs to ``acme``), given or not; a contradiction is refused.
    """

    session_id: str | None = None
    tenant_id: str | None = None
    query: str = ""
    model: str | None = None
    variant: str | None = None
    config: dict[str, Any] = Field(default_factory=dict)
    extra: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _tenant_of_the_session(self) -> PromptContext:
        owner = tenant_of(self.session_id)
        if self.tenant_id is None:
            self.tenant_id = owner
        elif owner is not None and owner != self.tenant_id:
            raise ValueError(
                f"session {self.session_id!r} belongs to tenant {owner!r}, not {self.tenant_id!r}"
            )
        return self

    def _as_dict(self) -> dict[str, Any]:
        merged = {**self.extra, **self.config}
        for name in ("session_id", "tenant_id", "query", "model", "variant", "config"):
            merged[name] = getattr(self, name)
        return merged

    def __getitem__(self, key: str) -> Any:
        if key in type(self).model_fields:
            return getattr(self, key)
        if key in self.config:
            return self.config[key]
        return self.extra[key]

    def __contains__(self, key: object) -> bool:
        return key in type(self).model_fields or key in self.config or key in self.extra

    def get(self, key: str, default: Any = None) -> Any:
        try:
            return self[key]
        except KeyError:
            return default

    def __iter__(self) -> Iterator[str]:  # type: ignore[override]
        return iter(self._as_dict())

    def __len__(self) -> int:
        return len(self._as_dict())

    def keys(self):  # type: ignore[override]
        return self._as_dict().keys()

    def items(self):  # type: ignore[override]
        return self._as_dict().items()

    def values(self):  # type: ignore[override]
        return self._as_dict().values()
