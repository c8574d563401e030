"""Secrets at rest: Fernet with ``settings.FIELD_ENCRYPTION_KEY``. Nothing here logs or renders."""

from __future__ import annotations

from cryptography.fernet import Fernet, InvalidToken
from django.conf import settings


def _fernet() -> Fernet:
    return Fernet(settings.FIELD_ENCRYPTION_KEY.encode())


def encrypt(plain: str) -> str:
    return _fernet().encrypt(plain.encode()).decode() if plain else ""


class SecretUnreadable(ValueError):
    """A stored secret the current key cannot decrypt (the key changed since it was saved)."""


def decrypt(token: str) -> str:
    """The plain secret; raises :class:`SecretUnreadable` rather than hand back an empty one, so a
    run never goes out silently without its key after a key rotation."""
    if not token:
        return ""
    try:
        return _fernet().decrypt(token.encode()).decode()
    except InvalidToken:
        raise SecretUnreadable(
            "a stored secret cannot be decrypted with the current FIELD_ENCRYPTION_KEY (was the key "
            "changed?): enter the endpoint's API key and secret headers again"
        ) from None
