"""Password hashing (app.domain.security) at the production cost: the database tests hash at argon2id's
cheapest cost (the `_cheap_password_hashing` fixture of tests/conftest.py), so this is where the real
parameters are held to."""

from __future__ import annotations

from app.domain.security import hash_password, verify_password


def test_passwords_are_hashed_with_argon2id_at_rfc_9106_s_low_memory_cost() -> None:
    # RFC 9106's second recommended option (argon2-cffi's default): 64 MiB, 3 passes, 4 lanes.
    stored = hash_password("correct-horse-battery")
    assert stored.startswith("$argon2id$v=19$m=65536,t=3,p=4$"), stored
    assert verify_password(stored, "correct-horse-battery")
    assert not verify_password(stored, "correct-horse-batterz")
    assert not verify_password(None, "correct-horse-battery")
