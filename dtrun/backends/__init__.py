"""Backends run a `Job` somewhere: the Docker daemon (local or remote) is the one there is."""
