"""One module per host (audio API). Hosts never import each other; the
registry of which exist is :class:`duplexaudio.host.HostId`."""
