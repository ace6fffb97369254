"""``@tool``: a typed Python function becomes a :class:`~victor.protocols.Tool`.

The JSON Schema comes from the type hints (through pydantic), the descriptions from the
docstring (Google, NumPy or reST style). The same pydantic model validates and coerces
the model's arguments before the function runs.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable
from typing import Any, get_type_hints, overload

from pydantic import BaseModel, ConfigDict, Field, create_model

from victor.errors import ToolDefinitionError
from victor.protocols.tools import CostTier, Tool


def _parse_docstring(fn: Callable[..., Any]) -> tuple[str, dict[str, str]]:
    doc = inspect.getdoc(fn)
    if not doc:
        return "", {}
    import docstring_parser

    parsed = docstring_parser.parse(doc)
    summary = "\n\n".join(p for p in (parsed.short_description, parsed.long_description) if p)
    params = {p.arg_name: p.description or "" for p in parsed.params}
    return summary.strip(), params


def _strip_titles(schema: Any) -> Any:
    """pydantic adds a ``title`` to every property; models read them as noise."""
    if isinstance(schema, dict):
        return {
            k: _strip_titles(v)
            for k, v in schema.items()
            if not (k == "title" and isinstance(v, str))
        }
    if isinstance(schema, list):
        return [_strip_titles(v) for v in schema]
    return schema


def _arguments_model(fn: Callable[..., Any], descriptions: dict[str, str]) -> type[BaseModel]:
    try:
        hints = get_type_hints(fn, include_extras=True)
    except Exception as exc:  # unresolved forward references and the like
        raise ToolDefinitionError(
            f"cannot read the type hints of {fn.__qualname__}: {exc}"
        ) from exc
    fields: dict[str, Any] = {}
    params = list(inspect.signature(fn).parameters.items())
    if params and params[0][0] in ("self", "cls") and not inspect.ismethod(fn):
        raise ToolDefinitionError(
            f"{fn.__qualname__} is a method: make a tool of the bound method, "
            "tool(instance.method), so the model is not asked for "
            f"{params[0][0]!r}"
        )
    for index, (pname, param) in enumerate(params):
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            raise ToolDefinitionError(
                f"{fn.__qualname__}: *{pname} / **{pname} cannot be described to a model; "
                "declare each argument"
            )
        if param.kind is param.POSITIONAL_ONLY:
            raise ToolDefinitionError(f"{fn.__qualname__}: positional-only argument {pname!r}")
        annotation = hints.get(pname, Any)
        default = ... if param.default is param.empty else param.default
        # Internal field names with the parameter as alias: a parameter may be called
        # ``schema``, ``json`` or ``model_config`` without clashing with pydantic's own.
        fields[f"arg{index}"] = (
            annotation,
            Field(default, alias=pname, description=descriptions.get(pname) or None),
        )
    try:
        return create_model(  # type: ignore[call-overload, no-any-return]
            f"{fn.__name__}_arguments",
            __config__=ConfigDict(extra="forbid"),
            **fields,
        )
    except Exception as exc:
        raise ToolDefinitionError(f"{fn.__qualname__}: unsupported argument types: {exc}") from exc


def function_tool(
    fn: Callable[..., Any],
    *,
    name: str | None = None,
    description: str | None = None,
    cost_tier: CostTier = "free",
    domain: str | None = None,
    tags: Iterable[str] = (),
    timeout: float | None = None,
) -> Tool:
    """Build a :class:`Tool` from ``fn``; what ``@tool`` does."""
    summary, param_docs = _parse_docstring(fn)
    model = _arguments_model(fn, param_docs)
    schema = _strip_titles(model.model_json_schema())
    schema.pop("additionalProperties", None)
    schema.setdefault("properties", {})
    built = Tool(
        name=name or fn.__name__,
        description=description if description is not None else summary,
        parameters=schema,
        cost_tier=cost_tier,
        domain=domain,
        tags=list(tags),
        timeout=timeout,
        fn=fn,
    )
    built._arguments_model = model
    return built


@overload
def tool(fn: Callable[..., Any], /) -> Tool: ...


@overload
def tool(
    *,
    name: str | None = None,
    description: str | None = None,
    cost_tier: CostTier = "free",
    domain: str | None = None,
    tags: Iterable[str] = (),
    timeout: float | None = None,
) -> Callable[[Callable[..., Any]], Tool]: ...


def tool(fn: Callable[..., Any] | None = None, /, **options: Any) -> Any:
    """Turn a function (sync or async) into a tool the model can call.

    ```python
    @tool
    async def get_weather(city: str, unit: Literal["C", "F"] = "C") -> str:
        \"\"\"Current weather in a city.

        Args:
            city: The city name, e.g. "Paris".
        \"\"\"
    ```
    Options: ``name``, ``description`` (default: the docstring), ``cost_tier``,
    ``domain``, ``tags``, ``timeout`` (seconds). The result is still callable as the
    original function.
    """
    if fn is not None:
        return function_tool(fn, **options)
    return lambda f: function_tool(f, **options)
