"""TLS for a tcp:// daemon: which files to use, turned into an ssl context only when connecting.

Kept apart from the context itself so that resolving an endpoint reads no certificate (and a bad one is
reported when connecting, as `no Docker daemon answers at ...`, not when the endpoint is merely named).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from dtrun.structs import struct

if TYPE_CHECKING:
    import ssl


@struct(frozen=True)
class TLSConfig:
    """`cert`: the client's (certificate, key) files; `ca_cert`: the CA to check the daemon against when
    `verify` (None: the system's CAs); `verify` False accepts any daemon certificate."""

    cert: tuple[str, str] | None = None
    ca_cert: str | None = None
    verify: bool = True

    def context(self) -> ssl.SSLContext:
        import ssl

        if self.verify:
            context = ssl.create_default_context(cafile=self.ca_cert)
        else:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        if self.cert:
            context.load_cert_chain(*self.cert)
        return context
