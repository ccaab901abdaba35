"""The plugin contract (pluggy): hookspecs, the `hookimpl` marker and the manager factory."""

from .hookspecs import hookimpl, hookspec
from .manager import ENTRY_POINT_GROUP, get_plugin_manager

__all__ = ["ENTRY_POINT_GROUP", "get_plugin_manager", "hookimpl", "hookspec"]
