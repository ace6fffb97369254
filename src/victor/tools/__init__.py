"""Defining and running tools."""

from victor.tools.decorator import function_tool, tool
from victor.tools.executor import ToolExecutor

__all__ = ["ToolExecutor", "function_tool", "tool"]
