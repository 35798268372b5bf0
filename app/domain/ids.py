"""Row ids as they arrive from outside: the integer (int4) columns they are looked up in bound them.

An id beyond that range made Postgres fail the query (a 500) long after the request was accepted; typed
`DbId`, a route parameter or a config field refuses it with a 422 naming the field instead.
"""

from __future__ import annotations

from typing import Annotated

from annotated_types import Ge, Le

INT4_MAX = 2**31 - 1
DbId = Annotated[int, Ge(1), Le(INT4_MAX)]
