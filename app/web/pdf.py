"""The printable report as PDF: WeasyPrint lays out the report's HTML, with its figures drawn on the
server (vl-convert), since a PDF runs no script.

WeasyPrint runs in a child process (`python -m app.web.pdf`, HTML on stdin, PDF on stdout): importing it
switches on Pillow's LOAD_TRUNCATED_IMAGES for the whole process, which the image rendering refuses to
work under, and a layout's memory and CPU then end with the child. It needs the Pango library (Debian:
libpango-1.0-0, libpangoft2-1.0-0), and fetches nothing but this app's own files under static/: the report
never reaches the network.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

STATIC = Path(__file__).resolve().parents[2] / "static"
BASE_URL = "http://report.invalid/"
UNAVAILABLE = 3  # the child's exit status when WeasyPrint or Pango is missing
TIMEOUT_S = 120


class PdfUnavailable(RuntimeError):
    """WeasyPrint or its Pango library is missing on this machine, or the layout failed."""


def html_to_pdf(html: str) -> bytes:
    """The report's HTML as PDF bytes, laid out by a child process; PdfUnavailable with the reason."""
    try:
        done = subprocess.run(
            [sys.executable, "-m", "app.web.pdf"],
            input=html.encode(),
            capture_output=True,
            timeout=TIMEOUT_S,
            cwd=STATIC.parent,
        )
    except subprocess.TimeoutExpired as exc:
        raise PdfUnavailable(f"laying out the PDF took over {TIMEOUT_S} s") from exc
    if done.returncode == UNAVAILABLE:
        raise PdfUnavailable(
            "PDF needs WeasyPrint and the Pango library (apt-get install libpango-1.0-0 "
            "libpangoft2-1.0-0); until then, print the report from the browser."
        )
    if done.returncode != 0 or not done.stdout.startswith(b"%PDF-"):
        tail = done.stderr.decode(errors="replace").strip().splitlines()[-1:] or ["no output"]
        raise PdfUnavailable(f"the PDF layout failed: {tail[0]}")
    return done.stdout


def _layout(html: str) -> bytes:
    from weasyprint import HTML
    from weasyprint.urls import URLFetcher, URLFetcherResponse

    class StaticOnly(URLFetcher):
        """Serves /static/... from the app's folder and refuses every other address."""

        def fetch(self, url, headers=None):
            path = url.removeprefix(BASE_URL).split("?", 1)[0]
            target = (STATIC / path.removeprefix("static/")).resolve()
            if not path.startswith("static/") or not target.is_relative_to(STATIC) or not target.is_file():
                raise ValueError(f"the report may not fetch {url}")
            mime = "text/css" if target.suffix == ".css" else "application/octet-stream"
            return URLFetcherResponse(url, target.read_bytes(), {"Content-Type": mime})

    return HTML(string=html, base_url=BASE_URL, url_fetcher=StaticOnly()).write_pdf()


if __name__ == "__main__":
    try:
        import weasyprint  # noqa: F401
    except (ImportError, OSError):  # OSError: the Pango library is missing
        sys.exit(UNAVAILABLE)
    sys.stdout.buffer.write(_layout(sys.stdin.buffer.read().decode("utf-8")))
