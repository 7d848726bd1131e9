"""The agent: configuration, command line and (later) the LangGraph state machine."""

from rearag.agent.config import Settings, load_settings

__all__ = ["Settings", "load_settings"]
