"""The `Tool` model: a function the model may call, with its JSON schema."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr

CostTier = Literal["free", "low", "medium", "high"]


class Tool(BaseModel):
    """A tool the model may call.

    ``parameters`` is a JSON Schema object. ``cost_tier`` is a plain string
    (``"free"``, ``"low"``, ``"medium"`` or ``"high"``) that cost-aware selection reads.
    ``fn`` is the Python callable (sync or async) run with the validated arguments; a tool
    without one (for example a catalogue entry) can be selected but not run.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True, extra="forbid")

    name: str = Field(min_length=1, max_length=128)
    description: str = ""
    parameters: dict[str, Any] = Field(default_factory=lambda: {"type": "object", "properties": {}})
    cost_tier: CostTier = "free"
    domain: str | None = None
    tags: list[str] = Field(default_factory=list)
    timeout: float | None = None  # seconds; None means the orchestrator's default
    metadata: dict[str, Any] = Field(default_factory=dict)
    fn: Callable[..., Any] | None = Field(default=None, exclude=True, repr=False)

    # Validates and coerces arguments; set by the @tool decorator from the type hints.
    _arguments_model: Any = PrivateAttr(default=None)

    @property
    def is_async(self) -> bool:
        fn = self.fn
        if fn is None:
            return False
        # A callable object with an async __call__ counts too.
        return inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(type(fn).__call__)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Call the underlying function directly, as if undecorated."""
        if self.fn is None:
            raise TypeError(f"tool {self.name!r} has no function to call")
        return self.fn(*args, **kwargs)

    def __hash__(self) -> int:
        return hash(self.name)

    def search_text(self) -> str:
        """The text retrieval strategies index: name, description, tags and parameters."""
        parts = [self.name, self.description, " ".join(self.tags)]
        props = self.parameters.get("properties") or {}
        for pname, spec in props.items():
            desc = spec.get("description", "") if isinstance(spec, dict) else ""
            parts.append(f"{pname} {desc}")
        return " ".join(p for p in parts if p)
