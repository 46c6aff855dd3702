"""The key pair that signs OSS upload callbacks (spec 10.3).

The cloud signs callback requests with RSA over MD5 and names, in `x-oss-pub-key-url`,
where the application server fetches the PEM public key to check them. A self-hosted
server cannot use the cloud's key, so Tidings creates its own pair on first start, keeps
it in the data dir (like the push signing key, `tidings.auth.push`) and serves the
public half on the OSS listener.
"""

from __future__ import annotations

import base64
from pathlib import Path

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

# The push module's atomic, race-free file creation is reused so that two processes
# starting on one data dir end up sharing a single key.
from tidings.auth.push import _load_key, _write_atomically

KEY_FILE = "callback-key.pem"
KEY_BITS = 2048


class CallbackSigner:
    """The server's callback signing key and its public half as PEM."""

    def __init__(self, key: rsa.RSAPrivateKey) -> None:
        self._key = key
        # SubjectPublicKeyInfo (`BEGIN PUBLIC KEY`): the form the cloud's key is served
        # in, which the documented verifiers (PHP openssl, M2Crypto, Java) load as is.
        self.public_key_pem = key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    @classmethod
    def load_or_create(cls, directory: Path) -> CallbackSigner:
        """Load `callback-key.pem` from `directory`, creating it (RSA-2048, PKCS#8, mode
        0600) when missing. The key is then kept: application servers may cache the
        public key they fetched."""
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        path = directory / KEY_FILE
        if path.exists():
            return cls(_load_key(path))
        fresh = rsa.generate_private_key(public_exponent=65537, key_size=KEY_BITS)
        pem = fresh.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        created = _write_atomically(path, pem, 0o600, replace=False)
        return cls(fresh if created else _load_key(path))

    def sign(self, data: bytes) -> str:
        """Base64 of the RSASSA-PKCS1-v1_5 signature of `data` with MD5, as the cloud
        signs callbacks (MD5 is the protocol's choice, not ours)."""
        signature = self._key.sign(data, padding.PKCS1v15(), hashes.MD5())
        return base64.b64encode(signature).decode("ascii")
