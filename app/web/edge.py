"""Validation at the edge that no single route should have to remember: text without control characters,
and ids within the range of the columns they are looked up in.

Both once answered with a 500: Postgres refuses a NUL byte in text and an integer beyond its column's type
when the query runs, long after the request was accepted. So every path parameter, query parameter, form
field name, form value and upload file name is checked before any route runs (an app-wide dependency),
and every id a route reads is typed `DbId` (app.domain.ids). Either failure is a 422 naming the field.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from starlette.datastructures import UploadFile

from app.domain.ids import DbId

__all__ = ["DbId", "refuse_control_characters"]

# C0 controls but tab, line feed and carriage return (which text areas send), and DEL.
CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


def _offending(where: str, items: Iterable[tuple[str, Any]]) -> list[dict[str, Any]]:
    errors = []
    for name, value in items:
        text = value.filename or "" if isinstance(value, UploadFile) else value
        for part, what in ((name, "name"), (text, "value")):
            if isinstance(part, str) and CONTROL.search(part):
                errors.append(
                    {
                        "loc": (where, CONTROL.sub("?", name)),
                        "msg": f"the {what} contains a control character (such as a NUL byte), "
                        "which no text here may hold",
                        "type": "value_error",
                    }
                )
                break
    return errors


async def refuse_control_characters(request: Request) -> None:
    """422 when any path, query or form text holds a control character (the form is parsed once anyway:
    Starlette caches it for the route)."""
    errors = _offending("path", request.path_params.items())
    errors += _offending("query", request.query_params.multi_items())
    if request.headers.get("content-type", "").startswith(FORM_TYPES):
        errors += _offending("form", (await request.form()).multi_items())
    if errors:
        raise RequestValidationError(errors)
