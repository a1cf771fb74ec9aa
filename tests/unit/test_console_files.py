"""The console's files as ConsoleFunction serves them: the CSP, the content types, no inline script anywhere."""

from __future__ import annotations

import re
from typing import Any

import pytest
from support import api_event

from console.handler import ASSETS, lambda_handler


def get(asset: str | None) -> dict[str, Any]:
    if asset is None:
        return lambda_handler(api_event("GET", "/console", "/console"), None)
    event = api_event("GET", "/console/{asset}", f"/console/{asset}", path_params={"asset": asset})
    return lambda_handler(event, None)


def test_the_page_forbids_inline_script_and_other_origins() -> None:
    answer = get(None)
    policy = answer["headers"]["Content-Security-Policy"]
    assert answer["statusCode"] == 200 and answer["headers"]["Content-Type"].startswith("text/html")
    assert "script-src 'self'" in policy and "unsafe-inline" not in policy and "unsafe-eval" not in policy
    assert "default-src 'none'" in policy and "frame-ancestors 'none'" in policy


@pytest.mark.parametrize(("asset", "content_type"), [("app.js", "text/javascript"), ("app.css", "text/css")])
def test_each_asset_has_its_content_type(asset: str, content_type: str) -> None:
    answer = get(asset)
    assert answer["statusCode"] == 200 and answer["headers"]["Content-Type"].startswith(content_type)


@pytest.mark.parametrize("asset", ["nope.js", "../handler.py", "%2e%2e%2fhandler.py"])
def test_anything_else_is_a_404(asset: str) -> None:
    answer = get(asset)
    assert answer["statusCode"] == 404 and '"not_found"' in answer["body"]


def test_no_file_has_inline_script_or_remote_assets() -> None:
    html = ASSETS["index.html"].read_text(encoding="utf-8")
    assert re.findall(r"<script(?![^>]*\bsrc=)", html) == []  # every script is a file
    assert re.findall(r"\son[a-z]+\s*=", html) == []  # no inline event handlers
    remote = re.compile(r"""(?:src|href)=["']?(?:https?:)?//|url\(["']?(?:https?:)?//|@import""")
    for path in ASSETS.values():
        assert not remote.findall(path.read_text(encoding="utf-8")), path.name  # nothing from a CDN
    assert "innerHTML" not in ASSETS["app.js"].read_text()  # what the PBX sent is put on the page as text


def test_the_short_number_field_offers_the_pbxs_points() -> None:
    # The employee form's short number is tied to a datalist that app.js fills from the admin route listing the PBX's
    # extensions (the browser test sees it filled from the simulator).
    html = ASSETS["index.html"].read_text(encoding="utf-8")
    field = re.search(r"<input id=\"short_number\"[^>]*>", html)
    assert field is not None and 'list="pbx-points"' in field.group(0)
    assert '<datalist id="pbx-points"></datalist>' in html
    script = ASSETS["app.js"].read_text(encoding="utf-8")
    assert 'api("GET", "/v1/pbx/points")' in script and '$("pbx-points").replaceChildren(' in script
