"""The hosts (audio APIs), one folder each: ``hosts/<name>/`` holds its Python
and its C. What a host implements is declared by `duplexio.host`'s hooks
and `duplexio.contract` (read that first); hosts never import each other;
the registry of which exist is `duplexio.host.HostId`."""
