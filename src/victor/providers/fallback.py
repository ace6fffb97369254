"""A provider that answers through the first of several providers that works.

Each provider of the chain does its own retries first, so the chain moves on only once
a provider has really given up: out of retries on a rate limit or outage, a wrong key,
a timeout, a malformed answer.

A :class:`~victor.errors.ProviderBadRequestError` is *not* passed on by default: the
request itself was refused (an invalid tool schema, a malformed conversation), the next
provider would most likely refuse it too, and its error would hide the first one. Two
refusals are about the model, not the request, and are passed on: an unknown model
(:class:`~victor.errors.ProviderModelNotFoundError`) and a prompt too long for the model's
context window (:class:`~victor.errors.ProviderContextLengthError`), which another model
may well take. Pass ``should_fallback`` to decide otherwise.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import aclosing
from dataclasses import dataclass
from typing import Any, Self

from victor.errors import (
    ProviderBadRequestError,
    ProviderContextLengthError,
    ProviderError,
    ProviderModelNotFoundError,
)
from victor.protocols.interfaces import IProvider
from victor.protocols.messages import ChatResponse, Message, StreamChunk
from victor.protocols.tools import Tool

__all__ = ["FallbackProvider", "FallbackRaw", "ProviderEntry", "default_should_fallback"]

logger = logging.getLogger("victor.providers")

#: A provider of the chain, alone (it gets the model the caller asked for) or with the
#: model it should use instead, e.g. ``(anthropic, "claude-haiku-4-5")``.
ProviderEntry = IProvider | tuple[IProvider, str]


def default_should_fallback(error: ProviderError) -> bool:
    """Move on for every provider error except a refused request, unless the refusal is
    about the model (unknown, or its context window too small): another model may answer."""
    if isinstance(error, ProviderModelNotFoundError | ProviderContextLengthError):
        return True
    return not isinstance(error, ProviderBadRequestError)


@dataclass(frozen=True, slots=True)
class FallbackRaw:
    """What :attr:`ChatResponse.raw` holds on an answer from a :class:`FallbackProvider`.

    ``provider`` is the name of the provider that answered and ``index`` its position in
    the chain (0: the primary); ``raw`` is that provider's own raw response; ``failures``
    are the errors of the providers tried before it, in order.
    """

    provider: str
    index: int
    model: str
    raw: Any
    failures: tuple[ProviderError, ...] = ()


class FallbackProvider(IProvider):
    """Tries ``primary``, then each fallback in order, until one answers.

    ``FallbackProvider(openai, (anthropic, "claude-sonnet-4-5"))`` sends the caller's model
    to ``openai`` and ``claude-sonnet-4-5`` to ``anthropic``; the same provider may appear
    twice with different models (a cheaper model as the fallback of a busy one).

    Which provider answered is in the response: ``response.raw`` is a
    :class:`FallbackRaw`, and ``response.model`` is the model that answered.
    :attr:`last_provider` also names it, which is handy in scripts but meaningless when
    several calls run at once. When every provider fails, the last error is raised, with
    the earlier ones attached as notes.

    A stream moves on only while nothing has been yielded: once a provider's text has
    reached the caller, its failure is the caller's to handle.
    """

    def __init__(
        self,
        primary: ProviderEntry,
        *fallbacks: ProviderEntry,
        name: str = "fallback",
        should_fallback: Callable[[ProviderError], bool] = default_should_fallback,
    ) -> None:
        self.name = name
        self.should_fallback = should_fallback
        self.chain: list[tuple[IProvider, str | None]] = []
        for entry in (primary, *fallbacks):
            if isinstance(entry, tuple):
                provider, model = entry
                self.chain.append((provider, model))
            else:
                self.chain.append((entry, None))
        for provider, _ in self.chain:
            if not isinstance(provider, IProvider):
                raise TypeError(f"FallbackProvider takes IProvider instances, got {provider!r}")
        self.last_provider: str | None = None

    async def chat(
        self,
        messages: Sequence[Message],
        *,
        model: str,
        tools: Sequence[Tool] = (),
        temperature: float | None = None,
        max_tokens: int | None = None,
        **options: Any,
    ) -> ChatResponse:
        failures: list[ProviderError] = []
        for index, (provider, override) in enumerate(self.chain):
            use_model = override or model
            try:
                response = await provider.chat(
                    messages,
                    model=use_model,
                    tools=tools,
                    temperature=temperature,
                    max_tokens=max_tokens,
                    **options,
                )
            except ProviderError as error:
                self._give_up_unless_next(error, index, failures)
                failures.append(error)
                continue
            return self._mark(response, index, use_model, failures)
        raise AssertionError("unreachable: the chain is never empty")  # pragma: no cover

    async def stream(
        self,
        messages: Sequence[Message],
        *,
        model: str,
        tools: Sequence[Tool] = (),
        temperature: float | None = None,
        max_tokens: int | None = None,
        **options: Any,
    ) -> AsyncIterator[StreamChunk]:
        failures: list[ProviderError] = []
        for index, (provider, override) in enumerate(self.chain):
            use_model = override or model
            yielded = False
            try:
                chunks = provider.stream(
                    messages,
                    model=use_model,
                    tools=tools,
                    temperature=temperature,
                    max_tokens=max_tokens,
                    **options,
                )
                async with aclosing(chunks) as it:  # type: ignore[type-var]
                    async for chunk in it:
                        if chunk.type == "done" and chunk.response is not None:
                            marked = self._mark(chunk.response, index, use_model, failures)
                            chunk = chunk.model_copy(update={"response": marked})
                        yielded = True
                        yield chunk
                return
            except ProviderError as error:
                if yielded:
                    raise
                self._give_up_unless_next(error, index, failures)
                failures.append(error)

    async def aclose(self) -> None:
        """Close every provider of the chain once, even when one of them fails to close."""
        first_error: BaseException | None = None
        seen: set[int] = set()
        for provider, _ in self.chain:
            if id(provider) in seen:
                continue
            seen.add(id(provider))
            try:
                await provider.aclose()
            except Exception as exc:  # keep closing the others
                first_error = first_error or exc
        if first_error is not None:
            raise first_error

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    def _give_up_unless_next(
        self, error: ProviderError, index: int, failures: list[ProviderError]
    ) -> None:
        """Raise ``error`` when the chain must stop here; log the switch otherwise."""
        name = self._name(index)
        if index == len(self.chain) - 1 or not self.should_fallback(error):
            for earlier_index, earlier in enumerate(failures):
                error.add_note(f"tried first: {self._name(earlier_index)}: {earlier}")
            raise error
        logger.warning(
            "%s failed (%s: %s); falling back to %s",
            name,
            type(error).__name__,
            error,
            self._name(index + 1),
        )

    def _name(self, index: int) -> str:
        return getattr(self.chain[index][0], "name", None) or f"provider #{index}"

    def _mark(
        self, response: ChatResponse, index: int, model: str, failures: list[ProviderError]
    ) -> ChatResponse:
        name = self._name(index)
        self.last_provider = name
        raw = FallbackRaw(
            provider=name, index=index, model=model, raw=response.raw, failures=tuple(failures)
        )
        return response.model_copy(update={"raw": raw, "model": response.model or model})
