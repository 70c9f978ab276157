"""Client certificates for HTTP destinations (mutual TLS): one SSL context per certificate,
key and CA bundle, built once off the event loop and shared by every delivery using them."""

from __future__ import annotations

import asyncio
import hashlib
import os
import ssl
import tempfile

from core.destination_configs import MutualTls

# Contexts of at most this many distinct certificates are kept (the oldest go first).
MAX_CONTEXTS = 1_000


class ClientCertificates:
    """SSL contexts by the certificate material they hold."""

    def __init__(self) -> None:
        self._contexts: dict[str, ssl.SSLContext] = {}

    async def context_for(self, tls: MutualTls) -> ssl.SSLContext:
        """The context presenting this client certificate and trusting its CA bundle."""
        key = hashlib.sha256(
            "\0".join((tls.client_certificate, tls.client_key, tls.ca_bundle or "")).encode()
        ).hexdigest()
        found = self._contexts.get(key)
        if found is None:
            found = await asyncio.to_thread(_build, tls)
            if len(self._contexts) >= MAX_CONTEXTS:
                del self._contexts[next(iter(self._contexts))]
            self._contexts[key] = found
        return found


def _build(tls: MutualTls) -> ssl.SSLContext:
    context = ssl.create_default_context()
    if tls.ca_bundle:
        context.load_verify_locations(cadata=tls.ca_bundle)
    # The ssl module loads a certificate chain only from files: they exist, readable by this
    # process alone, for the instant of the load.
    with tempfile.TemporaryDirectory(prefix="eventgate-tls-") as folder:
        certificate = os.path.join(folder, "certificate.pem")
        key = os.path.join(folder, "key.pem")
        for path, text in ((certificate, tls.client_certificate), (key, tls.client_key)):
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(descriptor, "w") as file:
                file.write(text)
        context.load_cert_chain(certificate, key)
    return context
