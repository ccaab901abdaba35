"""The one place that builds the plugin manager (a factory, not a global: each test builds its
own)."""

from __future__ import annotations

from collections.abc import Iterable

import pluggy

from . import hookspecs

ENTRY_POINT_GROUP = hookspecs.PROJECT


def get_plugin_manager(
    blocked: Iterable[str] = (),
    extra_plugins: Iterable[tuple[object, str]] = (),
    load_entrypoints: bool = True,
    only: Iterable[str] | None = None,
) -> pluggy.PluginManager:
    """A plugin manager with the hookspecs, the entry-point plugins (built-ins included: they
    register through the same group) and `extra_plugins` as (plugin, name) pairs.

    `blocked` names plugins (entry-point names, or names given in `extra_plugins`) that are
    not loaded. `only`, when given, names the entry-point plugins to load, the others
    installed being ignored (`("builtin",)`: the built-in scorecards alone, whatever else the
    environment has installed); a name no installed distribution provides raises LookupError.
    Unknown hook implementations fail here (`check_pending`), at start-up.
    """
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    for name in blocked:
        pm.set_blocked(name)
    if load_entrypoints and only is None:
        pm.load_setuptools_entrypoints(ENTRY_POINT_GROUP)
    elif load_entrypoints and only is not None:
        for name in only:
            if (
                not pm.load_setuptools_entrypoints(ENTRY_POINT_GROUP, name=name)
                and not pm.is_blocked(name)
                and not pm.has_plugin(name)
            ):
                raise LookupError(
                    f"no installed plugin is named {name!r} (entry-point group {ENTRY_POINT_GROUP})"
                )
    for plugin, name in extra_plugins:
        if not pm.is_blocked(name):
            pm.register(plugin, name=name)
    pm.check_pending()
    return pm


def hook_per_plugin(pm: pluggy.PluginManager, name: str) -> list[tuple[str, pluggy.HookCaller]]:
    """(plugin name, caller) for each plugin implementing hook `name`, the first registered
    first (built-ins before third parties: the first to register a scorecard keeps it): the
    hook called through pluggy for that plugin alone (`subset_hook_caller`), so that a host
    can tell which plugin did what, and keep one plugin's failure from the others."""
    hook = getattr(pm.hook, name)
    plugins = [(impl.plugin_name, impl.plugin) for impl in hook.get_hookimpls()]
    return [
        (plugin_name, pm.subset_hook_caller(name, [p for _, p in plugins if p is not plugin]))
        for plugin_name, plugin in plugins
    ]


def plugin_names(pm: pluggy.PluginManager) -> list[str]:
    """Names of the registered plugins, for logs and diagnostics."""
    return sorted(name for name, plugin in pm.list_name_plugin() if plugin is not None)


__all__ = ["ENTRY_POINT_GROUP", "get_plugin_manager", "hook_per_plugin", "plugin_names"]
