"""The one way images leave the server: identical headers whatever the image's origin."""

from __future__ import annotations

from starlette.responses import Response

# No Last-Modified or ETag: file times and hashes could tell one source from another.
IMAGE_HEADERS = {
    "Cache-Control": "private, max-age=3600",
    "X-Content-Type-Options": "nosniff",
    "Content-Disposition": "inline",
}


def png_response(data: bytes) -> Response:
    """A PNG response with the fixed header set."""
    return Response(content=data, media_type="image/png", headers=IMAGE_HEADERS)
