"""The coordinators: each owns one policy of the agent loop and can be replaced."""

from victor.agent.coordinators.analytics_coordinator import AnalyticsCoordinator
from victor.agent.coordinators.config_coordinator import ConfigCoordinator
from victor.agent.coordinators.context_coordinator import ContextCoordinator
from victor.agent.coordinators.experiment_coordinator import ExperimentConfigCoordinator
from victor.agent.coordinators.middleware_coordinator import MiddlewareCoordinator
from victor.agent.coordinators.prompt_coordinator import PromptCoordinator
from victor.agent.coordinators.tool_selection_coordinator import ToolSelectionCoordinator

__all__ = [
    "AnalyticsCoordinator",
    "ConfigCoordinator",
    "ContextCoordinator",
    "ExperimentConfigCoordinator",
    "MiddlewareCoordinator",
    "PromptCoordinator",
    "ToolSelectionCoordinator",
]
