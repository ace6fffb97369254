"""Settings and configuration."""

from victor.config.settings import Settings

__all__ = ["Settings"]
