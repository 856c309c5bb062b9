"""The pin of a TLS certificate's public key, as kiosks write it in ``[server] pins``.

``sha256/`` + base64 of the SHA-256 of the certificate's SubjectPublicKeyInfo (DER): the
spelling of HPKP's ``pin-sha256`` and curl's ``--pinnedpubkey``. It names the key, not the
certificate, so a certificate renewed with the same key keeps its pin. The same as::

    openssl x509 -in cert.pem -pubkey -noout | openssl pkey -pubin -outform DER \\
        | openssl dgst -sha256 -binary | base64
"""

from __future__ import annotations

import base64
import hashlib

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat


def pin_of_certificate(cert: x509.Certificate) -> str:
    spki = cert.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    return "sha256/" + base64.b64encode(hashlib.sha256(spki).digest()).decode("ascii")


def pin_of_pem(pem: bytes) -> str:
    """The pin of the first certificate in ``pem``; ValueError if there is none."""
    return pin_of_certificate(x509.load_pem_x509_certificate(pem))
