"""Signing in through the real login form, for the browser tests."""

from __future__ import annotations

from tests import factories


def sign_in(page, base: str, email: str) -> None:
    """Fill the login form as a person would and wait until the start page has loaded."""
    page.goto(base + "/login")
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", factories.PASSWORD)
    page.keyboard.press("Enter")
    page.wait_for_load_state("networkidle")
