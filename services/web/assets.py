"""Static assets, all served by this service (never a CDN): htmx, Pico CSS and Chart.js from the pinned
npm packages in package.json (`npm ci` in services/web, which ./dev runs), and our own CSS/JS."""

from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

HERE = Path(__file__).parent
NODE_MODULES = HERE / "node_modules"
VENDOR = {
    "htmx.min.js": NODE_MODULES / "htmx.org" / "dist" / "htmx.min.js",
    "pico.min.css": NODE_MODULES / "@picocss" / "pico" / "css" / "pico.min.css",
    "chart.umd.min.js": NODE_MODULES / "chart.js" / "dist" / "chart.umd.min.js",
}


class VendorFiles(StaticFiles):
    """Only the named files of node_modules, under /static/vendor/<name>."""

    def lookup_path(self, path: str) -> tuple[str, object]:
        source = VENDOR.get(path)
        if source is None:
            return "", None
        return super().lookup_path(str(source.relative_to(NODE_MODULES)))


def mount(app: FastAPI) -> None:
    missing = [str(p) for p in VENDOR.values() if not p.is_file()]
    if missing:
        raise RuntimeError(f"web assets missing ({', '.join(missing)}): run `npm ci` in services/web (./dev does)")
    app.mount("/static/vendor", VendorFiles(directory=NODE_MODULES), name="vendor")
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
