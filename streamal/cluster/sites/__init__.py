"""Site profiles, one per machine, registered under the ``streamal.sites`` entry-point group.

A site is a :class:`SiteProfile` subclass in one file (see ``local.py``, ``polaris.py``,
``perlmutter.py`` and ``examples/sites/generic_slurm.py``)::

    >>> from streamal.cluster import sites
    >>> sites.available()  # doctest: +SKIP
    ['local', 'perlmutter', 'polaris']
    >>> polaris = sites.get("polaris")
    >>> len(polaris.topology().gpus), polaris.mpi_launcher
    (4, 'mpiexec')
    >>> sites.check_site_profile(polaris)
"""

from __future__ import annotations

from streamal import plugins
from streamal.cluster.sites.base import SiteProfile, check_site_profile
from streamal.errors import PluginError, one_line

__all__ = ["SiteProfile", "available", "check_site_profile", "get"]


def available() -> list[str]:
    """Names of the installed sites, sorted."""
    return plugins.available("sites")


def get(name: str) -> SiteProfile:
    """The site profile registered as ``name`` (or an import path ``package.module:Class``).

    Raises:
        PluginError: One line: ``unknown site 'x'; allowed: local, perlmutter, polaris``, or
            the plugin failed to import or build, or is not a :class:`SiteProfile`.
    """
    if ":" not in name:
        installed = available()
        if name not in installed:
            raise PluginError(
                f"unknown site {name!r}; allowed: {', '.join(installed) or 'none installed'}"
            )
    found = plugins.load("sites", name)
    if isinstance(found, SiteProfile):
        return found
    if not (isinstance(found, type) and issubclass(found, SiteProfile)):
        raise PluginError(f"site {name!r} is {found!r}, not a SiteProfile subclass")
    try:
        return found()
    except Exception as exc:  # e.g. an abstract method left out
        raise PluginError(
            f"cannot build site {name!r}: {type(exc).__name__}: {one_line(exc)}"
        ) from None
