"""The two ways of sending a stored PNG that bench_image_response.py compares, as one small ASGI app.

/bytes is what the product does (app.web.images.png_response: the file's bytes in one body); /file is
Starlette's FileResponse without its Last-Modified and ETag (which would tell one source from another),
which streams the file in chunks from a thread and would use zero-copy `http.response.pathsend` on a
server that offers it. The file comes from BENCH_IMAGE.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from fastapi import FastAPI
from starlette.responses import FileResponse, Response

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from app.web.images import IMAGE_HEADERS, png_response  # noqa: E402

IMAGE = Path(os.environ["BENCH_IMAGE"])
app = FastAPI()


class PngFile(FileResponse):
    """A FileResponse that sets only Content-Length from the file's stat."""

    def set_stat_headers(self, stat_result: os.stat_result) -> None:
        self.headers.setdefault("content-length", str(stat_result.st_size))


@app.get("/bytes")
def as_bytes() -> Response:
    """The product's way."""
    return png_response(IMAGE.read_bytes())


@app.get("/file")
def as_file() -> Response:
    """The file response."""
    return PngFile(IMAGE, media_type="image/png", headers=IMAGE_HEADERS, stat_result=os.stat(IMAGE))
