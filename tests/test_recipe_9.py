"""The A/B testing recipe of the recipe document, run as written against the package."""

from collections import Counter

# --- recipe code, as published -----------------------------------------------------------
# ab_testing_coordinator.py
import random
from typing import Dict

from victor.agent.coordinators import ConfigCoordinator


class ABTestingConfigCoordinator(ConfigCoordinator):
    """A/B test different configurations."""

    def __init__(self, variants: Dict[str, dict], weights: Dict[str, float] = None):
        """
        Args:
            variants: Dict of variant_name -> config
            weights: Dict of variant_name -> weight (for weighted sampling)
        """
        self.variants = variants
        self.weights = weights or {v: 1.0 for v in variants}
        self.session_assignments = {}

    async def load_config(self, session_id: str, config_override: dict = None) -> dict:
        """Load config for session (assigning to A/B variant)."""
        # Assign session to variant
        if session_id not in self.session_assignments:
            variant = self._assign_variant(session_id)
        else:
            variant = self.session_assignments[session_id]

        # Load variant config
        variant_config = self.variants[variant].copy()

        # Apply overrides
        if config_override:
            variant_config.update(config_override)

        # Track assignment in analytics
        await self._track_assignment(session_id, variant)

        return variant_config

    def _assign_variant(self, session_id: str) -> str:
        """Assign session to variant."""
        # Weighted random selection
        variants = list(self.variants.keys())
        weights = [self.weights.get(v, 1.0) for v in variants]

        variant = random.choices(variants, weights=weights, k=1)[0]
        self.session_assignments[session_id] = variant

        return variant

    async def _track_assignment(self, session_id: str, variant: str):
        """Track A/B assignment in analytics."""
        # Emit analytics event
        pass
# --- end of recipe code ------------------------------------------------------------------

from victor.agent.orchestrator import AgentOrchestrator
from victor.config.settings import Settings
from victor.providers import ScriptedProvider


async def test_recipe_9_usage_runs_and_applies_each_sessions_variant():
    random.seed(1234)
    provider = ScriptedProvider(["Hi! How can I help?"], cycle=True)

    # main.py, as published
    coordinator = ABTestingConfigCoordinator(
        variants={
            "control": {"temperature": 0.7, "model": "claude-sonnet-4-5"},
            "variant_a": {"temperature": 0.5, "model": "claude-sonnet-4-5"},
            "variant_b": {"temperature": 0.9, "model": "claude-opus-4-5"},
        },
        weights={
            "control": 0.5,
            "variant_a": 0.25,
            "variant_b": 0.25,
        }
    )

    orchestrator = AgentOrchestrator(
        settings=Settings(),
        provider=provider,
        model="claude-sonnet-4-5",
        _config_coordinator=coordinator
    )

    # Sessions are automatically assigned to variants
    response = await orchestrator.chat("Hello!", session_id="session-123")
    assert response.content == "Hi! How can I help?"

    variant = coordinator.session_assignments["session-123"]
    expected = coordinator.variants[variant]
    assert provider.calls[0]["temperature"] == expected["temperature"]
    assert provider.calls[0]["model"] == expected["model"] == response.model

    # Sticky: the same session keeps its variant on later turns.
    await orchestrator.chat("And again", session_id="session-123")
    assert provider.calls[1]["temperature"] == expected["temperature"]

    # Many sessions split roughly by the weights.
    for i in range(400):
        await orchestrator.chat("Hello!", session_id=f"s-{i}")
    counts = Counter(coordinator.session_assignments.values())
    assert 0.4 < counts["control"] / 401 < 0.6
    assert counts["variant_a"] > 50 and counts["variant_b"] > 50
    by_temperature = Counter(call["temperature"] for call in provider.calls[2:])
    assert by_temperature[0.7] == counts["control"] - (variant == "control")
    await orchestrator.aclose()
