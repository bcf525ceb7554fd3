"""Encryption at rest for queue credentials.

``settings.QUAYMASTER_ENCRYPTION_KEYS`` lists Fernet keys, newest first: the first encrypts,
every key decrypts. To rotate, put a new key first, deploy, run
``manage.py rotate_queue_secrets`` (re-encrypts every stored secret with the first key), then
drop the old key from the list.
"""

from __future__ import annotations

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from queues.errors import BadConfiguration


def _fernet() -> MultiFernet:
    # Built per call: settings may change (tests, rotation) and building is microseconds.
    keys = list(settings.QUAYMASTER_ENCRYPTION_KEYS)
    if not keys:
        raise ImproperlyConfigured("QUAYMASTER_ENCRYPTION_KEYS is empty.")
    return MultiFernet([Fernet(key.encode() if isinstance(key, str) else key) for key in keys])


def encrypt(plaintext: str) -> str:
    return _fernet().encrypt(plaintext.encode()).decode()


def decrypt(ciphertext: str) -> str:
    try:
        return _fernet().decrypt(ciphertext.encode()).decode()
    except InvalidToken as exc:
        raise BadConfiguration(
            "A stored queue secret cannot be decrypted with QUAYMASTER_ENCRYPTION_KEYS "
            "(was its key removed before rotate_queue_secrets ran?)."
        ) from exc


def rotate(ciphertext: str) -> str:
    """Re-encrypt ``ciphertext`` with the first key (it may have been made with any key)."""
    try:
        return _fernet().rotate(ciphertext.encode()).decode()
    except InvalidToken as exc:
        raise BadConfiguration(
            "A stored queue secret cannot be decrypted with QUAYMASTER_ENCRYPTION_KEYS."
        ) from exc


class EncryptedSecret:
    """A model's write-only secret, kept as Fernet ciphertext in its ``secret_ciphertext``
    column (a queue's password, a webhook endpoint's signing secret)."""

    secret_ciphertext: str

    def set_secret(self, plaintext: str) -> None:
        self.secret_ciphertext = encrypt(plaintext) if plaintext else ""

    def get_secret(self) -> str:
        """The plaintext secret, for the code that uses it only: never put it in a response
        or a page."""
        return decrypt(self.secret_ciphertext) if self.secret_ciphertext else ""

    @property
    def has_secret(self) -> bool:
        return bool(self.secret_ciphertext)
