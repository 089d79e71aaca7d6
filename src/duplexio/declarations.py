"""What each host folder says of itself: ``hosts/<name>/host.json``.

One place per host, read by everything that needs to know which hosts exist
and where they run: the registry (`duplexio.host`), the build
(``_engine/build.py`` and ``scripts/cross-check``, which load this file by
its path, before the package can be imported) and the tests. A host's
``host.json``::

    {
      "platforms": ["linux"],            // sys.platform prefixes its C builds and runs on; [] all
      "pkg_config": "libpipewire-0.3",   // headers its C compiles against (null: none);
                                         //   where they are missing the host is left out
      "preference": 10,                  // default_host() tries lower numbers first
      "not_default_on": ["linux"],       // platforms where default_host() passes it over
      "fallback": true                   // the host used when no other has devices (one host)
    }

Keys other than ``preference`` may be left out. The folder's name is the
host's name, its `duplexio.host.HostId` value and its device ids' prefix.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

__all__ = ["HOSTS", "HostDeclaration", "declared_hosts"]

#: The folder of the host folders.
HOSTS = Path(__file__).resolve().parent / "hosts"
_KEYS = {"platforms", "pkg_config", "preference", "not_default_on", "fallback"}


@dataclass(frozen=True)
class HostDeclaration:
    """One host as its folder declares it."""

    name: str
    folder: Path
    platforms: tuple[str, ...]
    pkg_config: str | None
    preference: int
    not_default_on: tuple[str, ...]
    fallback: bool

    def builds_on(self, platform: str) -> bool:
        """Whether its C is built (and the host available) on ``platform`` (``sys.platform``)."""
        return not self.platforms or any(platform.startswith(p) for p in self.platforms)

    def default_on(self, platform: str) -> bool:
        """Whether `default_host()` may pick it on ``platform``."""
        return not any(platform.startswith(p) for p in self.not_default_on)


def declared_hosts(folder: Path = HOSTS) -> list[HostDeclaration]:
    """Every folder's declaration, in order of preference.

    Raises
    ------
    ValueError
        A ``host.json`` with an unknown key or a value of the wrong type: the
        mistake of a host's author, said at the first import or build.
    """
    found = []
    for path in sorted(folder.glob("*/host.json")):
        raw = json.loads(path.read_text())
        unknown = set(raw) - _KEYS
        if unknown or not isinstance(raw.get("preference"), int):
            raise ValueError(f"{path}: unknown keys {sorted(unknown)} or no integer preference")
        found.append(
            HostDeclaration(
                name=path.parent.name,
                folder=path.parent,
                platforms=tuple(raw.get("platforms", ())),
                pkg_config=raw.get("pkg_config"),
                preference=raw["preference"],
                not_default_on=tuple(raw.get("not_default_on", ())),
                fallback=bool(raw.get("fallback", False)),
            )
        )
    return sorted(found, key=lambda d: (d.preference, d.name))
