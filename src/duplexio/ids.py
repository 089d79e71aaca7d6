"""Device and host ids: what names a device across runs and replugs.

Below `duplexio.host`, so that what tells of devices without building
streams (`duplexio.watch`) can name them too.
"""

from __future__ import annotations

import enum
import unicodedata
from dataclasses import dataclass

from duplexio._validate import checked_methods
from duplexio.errors import Error, ErrorKind, shown


class HostId(str, enum.Enum):
    """The hosts duplexio knows.

    The value is the prefix of device ids (``"virtual:loopback"``) and the
    name of the host's folder under `duplexio.hosts`. Adding a host is its
    folder (which declares where it runs and its preference for
    `default_host()`: ``host.json``, `duplexio.declarations`) and one line
    here.
    """

    PIPEWIRE = "pipewire"
    JACK = "jack"
    PULSE = "pulse"
    ALSA = "alsa"
    PORTAUDIO = "portaudio"
    VIRTUAL = "virtual"

    def __str__(self) -> str:
        return self.value


def parse_host_id(value: object) -> HostId:
    if isinstance(value, HostId):
        return value
    try:
        return HostId(value)
    except ValueError:
        known = ", ".join(h.value for h in HostId)
        raise Error(
            ErrorKind.INVALID_INPUT, f"unknown host {shown(value)}; known hosts are {known}"
        ) from None


@checked_methods
@dataclass(frozen=True)
class DeviceId:
    """A device's stable identity: ``"<host>:<id within the host>"``.

    ``str(device_id)`` and `parse()` round-trip. The part after the first
    colon belongs to the host and may itself contain colons (``"alsa:hw:0,0"``).

    Attributes
    ----------
    host
        The host the device belongs to.
    name
        The host's own id for the device.
    """

    host: HostId
    name: str

    def __post_init__(self) -> None:
        # A host given as text ("jack") becomes its HostId, so that the id
        # works wherever a parsed one does; an unknown host is refused here.
        object.__setattr__(self, "host", parse_host_id(self.host))
        if not isinstance(self.name, str) or not self.name.strip():
            raise Error(
                ErrorKind.INVALID_INPUT,
                f"device id needs a non-empty name after the host, got {shown(self.name)}",
            )
        if any(unicodedata.category(ch) == "Cc" for ch in self.name):
            raise Error(
                ErrorKind.INVALID_INPUT,
                f"device name {shown(self.name)} contains a control character",
            )

    @classmethod
    def parse(cls, text: str | DeviceId) -> DeviceId:
        """Parse ``"<host>:<name>"``.

        Raises
        ------
        Error
            ``INVALID_INPUT`` when the text is not a string, has no colon,
            names an unknown host or has an empty name.
        """
        if isinstance(text, DeviceId):
            return text
        if not isinstance(text, str):
            raise Error(
                ErrorKind.INVALID_INPUT,
                f"a device id is a string like 'virtual:loopback', got {shown(text)}",
            )
        host, sep, name = text.partition(":")
        if not sep:
            raise Error(
                ErrorKind.INVALID_INPUT,
                f"device id {shown(text)} has no host prefix; expected '<host>:<device>', "
                f"e.g. 'virtual:loopback'",
            )
        return cls(parse_host_id(host), name)

    def __str__(self) -> str:
        return f"{self.host.value}:{self.name}"


__all__ = ["DeviceId", "HostId", "parse_host_id"]
