"""WeasyPrint fetches nothing but the service's own assets: an external URL or a file elsewhere
on the machine, in a template or a field, is not fetched (real WeasyPrint, a real HTTP server)."""

import base64
import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from services.documents.pdf import OwnAssetsOnly, html_to_pdf
from services.documents.rendering import TEMPLATES

PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
)


@pytest.fixture
def listener() -> Iterator[tuple[str, list[str]]]:
    """An HTTP server recording every path asked of it (it would serve a PNG)."""
    hits: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            hits.append(self.path)
            self.send_response(200)
            self.send_header("Content-Type", "image/png")
            self.end_headers()
            self.wfile.write(PNG)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}", hits
    server.shutdown()
    server.server_close()


def images_in(pdf: bytes) -> int:
    return pdf.count(b"/Subtype /Image")


def test_external_urls_and_other_files_are_not_fetched(listener, tmp_path: Path) -> None:
    base, hits = listener
    elsewhere = tmp_path / "secret.png"
    elsewhere.write_bytes(PNG)
    html = f"""<html><head><link rel="stylesheet" href="{base}/style.css">
      <style>@import url("{base}/imported.css"); p {{ background: url("{base}/bg.png") }}</style></head>
      <body><p>Bill</p><img src="{base}/logo.png"><img src="{elsewhere.as_uri()}"><img src="file:///etc/hostname">
      </body></html>"""
    pdf, _ = html_to_pdf(html)
    assert hits == []
    assert images_in(pdf) == 0


def test_data_urls_and_the_services_own_assets_still_load() -> None:
    data_png = "data:image/png;base64," + base64.b64encode(PNG).decode()
    pdf, _ = html_to_pdf(f'<p>Bill</p><img src="{data_png}">')
    assert images_in(pdf) > 0
    own = (TEMPLATES / "base.css").as_uri()
    assert OwnAssetsOnly().fetch(own).url == own
