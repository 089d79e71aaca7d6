"""The hosts (audio APIs), one folder each: ``hosts/<name>/`` holds its Python
and its C. What a host implements and may use is `._contract`; hosts
never import each other; the registry of which exist is
`duplexio.host.HostId`."""
