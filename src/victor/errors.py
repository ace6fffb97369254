"""Every error Victor raises derives from :class:`VictorError`."""

from __future__ import annotations


class VictorError(Exception):
    """Base class of Victor's errors."""


class ConfigError(VictorError, ValueError):
    """Configuration that cannot be used; the message names the source (file, line, key)."""


class ProviderError(VictorError):
    """A model call failed.

    ``retryable`` says whether the same request may succeed later (rate limits, server
    errors, dropped connections); ``status_code`` is the HTTP status when there was one.
    """

    retryable: bool = False

    def __init__(
        self,
        message: str,
        *,
        provider: str | None = None,
        status_code: int | None = None,
        retryable: bool | None = None,
    ) -> None:
        super().__init__(message)
        self.provider = provider
        self.status_code = status_code
        if retryable is not None:
            self.retryable = retryable


class ProviderAuthError(ProviderError):
    """The API key is missing, wrong or not allowed to use this model."""


class ProviderRateLimitError(ProviderError):
    """HTTP 429. ``retry_after`` is the server's advice, in seconds, when it gave one."""

    retryable = True

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs) -> None:
        super().__init__(message, **kwargs)
        self.retry_after = retry_after


class ProviderServerError(ProviderError):
    """HTTP 5xx from the provider."""

    retryable = True


class ProviderConnectionError(ProviderError):
    """The provider could not be reached, or the connection dropped."""

    retryable = True


class ProviderTimeoutError(ProviderConnectionError):
    """The provider did not answer in time."""


class ProviderBadRequestError(ProviderError):
    """The provider rejected the request (HTTP 400/404/422): retrying will not help."""


class ProviderModelNotFoundError(ProviderBadRequestError):
    """The provider does not serve the requested model (unknown name, or no access to it).

    Another provider or model may well serve the request, so a fallback chain moves on.
    """


class ProviderContextLengthError(ProviderBadRequestError):
    """The conversation (with ``max_tokens``) does not fit the model's context window.

    A model with a larger window may take it, so a fallback chain moves on.
    """


class ProviderResponseError(ProviderError):
    """The provider answered with a body that is not what its protocol promises."""


class ToolLoopLimitError(VictorError):
    """The model kept asking for tools past ``max_tool_iterations`` without answering."""

    def __init__(self, iterations: int) -> None:
        super().__init__(
            f"the model still asked for tools after {iterations} rounds of tool calls; "
            "raise max_tool_iterations (Settings or the session config) if this is expected"
        )
        self.iterations = iterations


class ToolDefinitionError(VictorError, TypeError):
    """A function cannot be turned into a tool (unsupported signature or types)."""


class TenantMismatchError(VictorError, ValueError):
    """A session id names one tenant and the caller another."""


class SessionConflictError(VictorError):
    """Another writer (a process, a host, an orchestrator sharing the store) changed the
    session since this turn read it. Nothing of this turn was stored; the history is as
    the other writer left it. Retrying the turn reads that history and succeeds."""

    retryable = True

    def __init__(self, session_id: str, expected: int, found: int) -> None:
        super().__init__(
            f"session {session_id!r} changed while this turn ran (version {found}, this turn "
            f"read {expected}); nothing was stored: retry the turn"
        )
        self.session_id = session_id
        self.expected = expected
        self.found = found


class SessionStoreError(VictorError):
    """The session store could not read or write (database down, disk full...). A write
    that fails this way fails only its own turn."""


class AuthenticationError(VictorError, PermissionError):
    """A request's credentials are missing or were refused by the validator."""


class RateLimitExceeded(VictorError):
    """A request went over its rate limit. ``retry_after`` is the wait, in seconds, until
    it would be allowed; ``key`` is what the limit applies to (a tenant, a session)."""

    retryable = True

    def __init__(self, message: str, *, retry_after: float, key: str | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.key = key


class RateLimiterUnavailable(RateLimitExceeded):
    """The rate limiter's store (Redis) cannot be reached and the limiter fails closed."""


class ExperimentDataError(VictorError, ValueError):
    """An experiment's analysis cannot run on the data given (a metric with no data, a
    proportion that is not 0/1, a control that is not a variant...)."""
