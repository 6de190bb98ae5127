"""The web page at `/`: plain HTML/JS/CSS from api/web/, no build step, nothing fetched from elsewhere."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

WEB_DIR = Path(__file__).resolve().parent.parent / "web"

# The page loads only its own script and stylesheet and talks only to this service; untrusted text
# (passages, answers) is inserted with textContent, and this policy backs that up if a bug slipped in.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}

router = APIRouter(include_in_schema=False)


@router.get("/")
def page() -> FileResponse:
    return FileResponse(WEB_DIR / "index.html", media_type="text/html", headers=SECURITY_HEADERS)


def mount(app: FastAPI) -> None:
    """Serve the page's script and stylesheet under /web/."""
    app.mount("/web", StaticFiles(directory=WEB_DIR), name="web")
