"""Password hashing (argon2id) and random tokens."""

from __future__ import annotations

import hashlib
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

_hasher = PasswordHasher()



def hash_password(password: str) -> str:
    """An argon2id hash of `password`."""
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    """True when `password` matches; a missing hash never matches."""
    if not password_hash:
        # Spend the same time as a real check so response time does not reveal unknown accounts.
        _hasher.hash(password)
        return False
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def new_token(nbytes: int = 32) -> str:
    """A URL-safe random token."""
    return secrets.token_urlsafe(nbytes)


def token_digest(token: str) -> str:
    """What the database keeps of a token: its SHA-256, so a leaked table grants nothing."""
    return hashlib.sha256(token.encode()).hexdigest()


def new_pseudonym() -> str:
    """A reader's export name, e.g. R-3f9a1c; random so it says nothing about the person."""
    return "R-" + secrets.token_hex(3)


def new_opaque_id() -> str:
    """An id for a case that carries no information (not sequential, not derived from content)."""
    return secrets.token_urlsafe(18)
