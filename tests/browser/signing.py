"""Signing in through the real login form, for the browser tests."""

from __future__ import annotations

from tests import factories


def sign_in(page, base: str, email: str) -> None:
    """Fill the login form as a person would and wait until the start page has loaded."""
    page.goto(base + "/login")
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", factories.PASSWORD)
    # Wait for the form's own navigation: the page is idle before the post leaves, and a goto that came
    # next would cancel it (the session cookie then never arrives).
    with page.expect_navigation(timeout=90_000):  # argon2 on a busy machine: a sign-in may take seconds
        page.keyboard.press("Enter")
    page.wait_for_load_state("networkidle")
    assert "/login" not in page.url, f"sign-in as {email} failed: {page.inner_text('main')[:300]}"
