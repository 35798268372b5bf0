"""Password strength: what an invitation accepts (OWASP ASVS 2.1: at least 12 characters, and a check
against passwords that are long but guessable).

No maintained strength estimator (zxcvbn or another) is in this machine's package index, so this is our
own, deliberately narrow check. It refuses what a guessing attack tries first: too few characters,
too few different ones, runs and sequences (aaaa, 1234, abcd, qwerty rows), and the account's own email
or name; what is left must still be 8 characters of something else. It does not estimate entropy, and a
deployment that can install zxcvbn should put it behind `problem` as well.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

MIN_LENGTH = 12
MIN_DISTINCT = 5
MIN_LEFT = 8  # characters that are neither a run, a sequence, nor a hint
ROWS = ("qwertyuiop", "asdfghjkl", "zxcvbnm", "azertyuiop", "qwertzuiop", "1234567890")
COMMON = ("password", "passwort", "letmein", "welcome", "admin", "cxrlab", "radiology", "iloveyou")


def _predictable(a: str, b: str) -> bool:
    """Whether b follows a as a run, an alphabet or digit sequence, or a keyboard-row neighbour."""
    if a == b or abs(ord(a) - ord(b)) == 1:
        return True
    return any(a + b in row or b + a in row for row in ROWS)


def _left_after(password: str, hints: Iterable[str]) -> int:
    """Characters left once hints, common words, runs and sequences are taken out."""
    text = password.lower()
    for word in [*COMMON, *(h.lower() for h in hints if len(h) >= 4)]:
        text = text.replace(word, "\0")  # one placeholder: the word counts as a single guess
    left = 0
    for i, ch in enumerate(text):
        if ch != "\0" and not (i and text[i - 1] != "\0" and _predictable(text[i - 1], ch)):
            left += 1
    return left


def problem(password: str, *, hints: Iterable[str] = ()) -> str | None:
    """Why the password is refused, or None; `hints` are the account's email and name."""
    hints = [part for h in hints for part in re.split(r"[@.\s_-]+", h) if part]
    if len(password) < MIN_LENGTH:
        return f"The password must have at least {MIN_LENGTH} characters."
    if len(set(password)) < MIN_DISTINCT:
        return f"The password must use at least {MIN_DISTINCT} different characters."
    if _left_after(password, hints) < MIN_LEFT:
        return (
            "The password is too easy to guess: it is mostly repeats, sequences, keyboard rows, common "
            "words or your own name or email. Add unrelated words or characters."
        )
    return None
