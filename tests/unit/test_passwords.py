"""Password strength (app.domain.passwords): what an invitation refuses, and what it accepts."""

from __future__ import annotations

import pytest

from app.domain.passwords import problem


@pytest.mark.parametrize(
    "password",
    [
        "aaaaaaaaaa",  # the example: too short, and one character
        "aaaaaaaaaaaa",
        "abababababab",
        "123456789012",
        "abcdefghijkl",
        "qwertyuiopas",
        "password1234",
        "Password!Password!",
        "jane.doe.radiology",  # the account's own name and email
        "zxcvbnm12345",
    ],
)
def test_guessable_passwords_are_refused(password: str) -> None:
    assert problem(password, hints=("jane.doe@hospital.org", "Jane Doe")) is not None


@pytest.mark.parametrize(
    "password", ["correct-horse-battery", "bench-password-123", "demo-reading-room", "tulip river 7 glass"]
)
def test_ordinary_strong_passphrases_pass(password: str) -> None:
    assert problem(password, hints=("jane.doe@hospital.org", "Jane Doe")) is None


def test_the_reasons_name_what_to_change() -> None:
    assert "12 characters" in problem("short")
    assert "different characters" in problem("abababababab")
    assert "easy to guess" in problem("qwertyuiop123")
