"""Patient, study and instance identifiers from outside data, kept out as keyed hashes (pseudonyms).

A hospital's patient id (an MRN), a study's accession or UID and a DICOM instance's UID identify a person
to anyone who can look them up, so the app stores none of them. What it stores instead is a pseudonym:
HMAC-SHA256 under a secret key from settings (`IDENTITY_KEY`, or a key derived from `SECRET_KEY`), cut
to 96 bits and prefixed by its kind ("pid_", "sid_", "uid_"). The same id always gives the same pseudonym
under the same key, so patient-level splits, leakage audits and resumed imports still work; without the
key nobody can test a guessed MRN against the stored values (a plain hash of a six-digit MRN falls to a
million guesses). With 96 bits a chance collision among a billion patients has odds of about 6e-12.

Ids this app makes itself (a phantom's "phantom-<seed>-<index>", a generated film) are not personal and
stay as they are; `is_generated_source` names those sources. Changing the key changes every pseudonym
made afterwards: sets imported before and after no longer share patients, so set it once.
"""

from __future__ import annotations

import hashlib
import hmac
from functools import lru_cache
from typing import Literal

from app.core.config import get_settings

Kind = Literal["patient", "study", "instance"]
PREFIXES: dict[Kind, str] = {"patient": "pid_", "study": "sid_", "instance": "uid_"}
DIGEST_HEX = 24  # 96 bits
# Image sets this app generated: their ids are its own, not a person's.
GENERATED_SOURCES = frozenset({"phantoms", "sampling", "lco"})


def is_generated_source(source: str) -> bool:
    """Whether an image set's source is one of this app's generators (its ids are no one's)."""
    return source in GENERATED_SOURCES


def is_pseudonym(value: str) -> bool:
    """Whether a value already has a pseudonym's form (so hashing is never applied twice)."""
    return any(
        value.startswith(p)
        and len(value) == len(p) + DIGEST_HEX
        and all(c in "0123456789abcdef" for c in value[len(p) :])
        for p in PREFIXES.values()
    )


def pseudonym(kind: Kind, value: str | None, *, key: bytes | None = None) -> str | None:
    """The keyed hash that stands for `value` (None and blank stay None; a pseudonym stays itself)."""
    if value is None or not value.strip():
        return None
    value = value.strip()
    if is_pseudonym(value):
        return value
    digest = hmac.new(key or identity_key(), f"{kind}\x00{value}".encode(), hashlib.sha256).hexdigest()
    return PREFIXES[kind] + digest[:DIGEST_HEX]


@lru_cache
def identity_key() -> bytes:
    """The process's key: IDENTITY_KEY when set, else one derived from SECRET_KEY (never SECRET_KEY itself,
    which also signs sessions and may be rotated for reasons of its own)."""
    settings = get_settings()
    if settings.identity_key:
        return settings.identity_key.encode()
    return hmac.new(settings.secret_key.encode(), b"cxrlab identity key v1", hashlib.sha256).digest()
