"""Session config from an experiment: the variant's config over the base providers."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, Protocol

from victor.agent.coordinators.config_coordinator import ConfigCoordinator
from victor.agent.coordinators.config_providers import merge_into
from victor.analytics.events import EXPERIMENT, VARIANT, Scope, experiment_assignment
from victor.experiments import AssignmentTable, Experiment
from victor.protocols import IConfigProvider
from victor.protocols.tenancy import tenant_of

logger = logging.getLogger(__name__)

__all__ = ["ExperimentConfigCoordinator"]

USER_ID = "user_id"  # the config key naming the user, for experiments by user


class _Emitter(Protocol):
    def emit(self, event: Any) -> None: ...


class ExperimentConfigCoordinator(ConfigCoordinator):
    """A :class:`ConfigCoordinator` running one experiment.

    Each session's config is the base providers' config, the variant's config over it,
    the ``experiment`` and ``variant`` keys (which the orchestrator copies into
    ``ChatResponse`` and every analytics event of the turn), then the turn's override.
    A unit outside the experiment gets the base config alone.

    The unit is the session id, its tenant (``"acme:session-1"``) or the config's
    ``user_id``, as ``experiment.unit`` says. With ``table``, a unit keeps its first
    variant when weights change. ``analytics`` (the orchestrator's
    ``analytics_coordinator``, settable after construction) receives one
    ``experiment_assignment`` event per session the first time this process assigns it,
    naming the unit (so the report can group a user's or a tenant's sessions).
    """

    def __init__(
        self,
        experiment: Experiment,
        providers: Sequence[IConfigProvider] | None = None,
        *,
        table: AssignmentTable | None = None,
        analytics: _Emitter | None = None,
        strict: bool = False,
    ) -> None:
        super().__init__(providers, strict=strict)
        self.experiment = experiment
        self.table = table
        self.analytics = analytics
        # Session -> unit of the sessions this process assigned: a user's feedback and
        # metrics, recorded outside a turn without the user id, keep the session's variant.
        self._units: dict[str, str] = {}

    def unit_id(self, session_id: str, config: dict[str, Any]) -> str | None:
        if self.experiment.unit == "tenant":
            return config.get("tenant_id") or tenant_of(session_id)
        if self.experiment.unit == "user":
            user = config.get(USER_ID)
            return str(user) if user is not None else self._units.get(session_id)
        return session_id

    async def variant_of(self, unit_id: str) -> str | None:
        if self.table is not None:
            return await self.table.assign(self.experiment, unit_id)
        return self.experiment.assign(unit_id)

    async def load_config(
        self, session_id: str, config_override: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        config = await super().load_config(session_id)
        unit = self.unit_id(session_id, {**config, **(config_override or {})})
        variant = await self.variant_of(unit) if unit is not None else None
        if variant is not None:
            merge_into(config, self.experiment.variants[variant])
            config[EXPERIMENT] = self.experiment.name
            config[VARIANT] = variant
            if self._units.get(session_id) != unit:
                self._units[session_id] = unit
                self._announce(session_id, config, variant, unit)
        if config_override:
            merge_into(config, config_override)
        return config

    def _announce(self, session_id: str, config: dict[str, Any], variant: str, unit: str) -> None:
        if self.analytics is None:
            return
        scope = Scope(
            session_id,
            config.get("tenant_id") or tenant_of(session_id),
            self.experiment.name,
            variant,
        )
        self.analytics.emit(
            experiment_assignment(
                scope, experiment=self.experiment.name, variant=variant, unit_id=unit
            )
        )

    async def aclose(self) -> None:
        await super().aclose()
        if self.table is not None:
            await self.table.aclose()
