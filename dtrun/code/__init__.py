"""Code shipping that scales with the change, not with the repository.

The client side lists what git would ship (`listing`), digests it through a per-project index so
unchanged files are not re-read (`index`, `manifest`), and streams tar archives without holding a
file in memory (`tarstream`). The daemon side keeps a content-addressed code volume per repository;
`delta` and `volume` are the pure parts of it (what to send, the tar that lands it in the volume, and
the job's copy-on-write view), which a backend drives through its API.
"""
