"""HTML → PDF with WeasyPrint, fetching nothing but the service's own assets. Imported only
by the render processes (and tests): the documents service process never renders, and
WeasyPrint's import was a third of its start-up time (restart → events flowing)."""

import urllib.parse
import urllib.request
from pathlib import Path

from weasyprint import HTML
from weasyprint.urls import URLFetcher, URLFetcherResponse

from services.documents.rendering import TEMPLATES


class OwnAssetsOnly(URLFetcher):
    """WeasyPrint may load the service's own static assets (files under the templates folder)
    and `data:` URLs, nothing else: a field or template naming an external URL or another file
    (`file:///etc/...`) is not fetched. WeasyPrint logs the refusal and renders without it."""

    def fetch(self, url: str, headers: dict[str, str] | None = None) -> URLFetcherResponse:
        parts = urllib.parse.urlsplit(url)
        if parts.scheme == "data":
            return super().fetch(url, headers)
        if parts.scheme == "file" and parts.netloc in ("", "localhost"):
            path = Path(urllib.request.url2pathname(parts.path)).resolve()
            if path.is_relative_to(TEMPLATES) and path.is_file():
                return super().fetch(url, headers)
        raise ValueError(f"not fetched: {parts.scheme}: URLs other than the service's own assets are refused")


def html_to_pdf(html: str) -> tuple[bytes, int]:
    document = HTML(string=html, base_url=str(TEMPLATES), url_fetcher=OwnAssetsOnly(timeout=5)).render()
    return document.write_pdf(), len(document.pages)
