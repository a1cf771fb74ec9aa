"""GET /console and GET /console/{asset}: the operator console, a static page that talks to the API it is served by.

Every asset is in this package (nothing from a CDN); the page's scripts are files, never inline, and the answers carry
a Content-Security-Policy that forbids inline script and any origin but this one (recordings may play from the PBX).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

STATIC = Path(__file__).parent / "static"
CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
}
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "media-src https: http:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}
ASSETS = {path.name: path for path in STATIC.iterdir() if path.suffix in CONTENT_TYPES}


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    name = (event.get("pathParameters") or {}).get("asset") or "index.html"
    path = ASSETS.get(name)
    if path is None:
        return {
            "statusCode": 404,
            "headers": {"Content-Type": "application/json", **SECURITY_HEADERS},
            "body": '{"error": "not_found", "message": "no such console file"}',
        }
    return {
        "statusCode": 200,
        "headers": {"Content-Type": CONTENT_TYPES[path.suffix], **SECURITY_HEADERS},
        "body": path.read_text(encoding="utf-8"),
    }
