"""The printable report as PDF: WeasyPrint lays out the report's HTML, with its figures drawn on the
server (vl-convert), since a PDF runs no script.

WeasyPrint needs the Pango library (Debian: libpango-1.0-0, libpangoft2-1.0-0); without it the route says
so. It fetches nothing but this app's own files under static/: the report never reaches the network.
"""

from __future__ import annotations

from pathlib import Path

STATIC = Path(__file__).resolve().parents[2] / "static"
BASE_URL = "http://report.invalid/"


class PdfUnavailable(RuntimeError):
    """WeasyPrint or its Pango library is missing on this machine."""


def html_to_pdf(html: str) -> bytes:
    """The report's HTML as PDF bytes; PdfUnavailable when WeasyPrint cannot run here."""
    try:
        from weasyprint import HTML
        from weasyprint.urls import URLFetcher, URLFetcherResponse
    except (ImportError, OSError) as exc:  # OSError: the Pango library is missing
        raise PdfUnavailable(
            "PDF needs WeasyPrint and the Pango library (apt-get install libpango-1.0-0 "
            "libpangoft2-1.0-0); until then, print the report from the browser."
        ) from exc

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
