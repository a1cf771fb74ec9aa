"""A read-only smoke test of a running stage: local (`make run`) or deployed (dev before prod, the pipeline's gate).

    python -m devstack.smoke --base-url https://pbx.example.com --token <a bot token of a smoke project>
    python -m devstack.smoke --stack-file .local/stack.json      # the local stack: its URL and demo bot token

It writes nothing: every function behind the API is reached once (the console, who the token is, the live calls, the
webhook with an unknown secret: 404 and nothing kept), plus API Gateway's own answers (401 without a token, the JSON
404 of an unknown route). Prints one line per check; exits 1 when any fails. The token is never printed.
"""

from __future__ import annotations

import argparse
import json
import secrets
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx


@dataclass(frozen=True)
class Check:
    name: str
    method: str
    path: str
    status: int
    authorized: bool
    body_has: Callable[[httpx.Response], bool]


def _json_error(code: str) -> Callable[[httpx.Response], bool]:
    return lambda answer: _json(answer).get("error") == code


def _json(answer: httpx.Response) -> dict[str, object]:
    try:
        found = answer.json()
    except json.JSONDecodeError:
        return {}
    return found if isinstance(found, dict) else {}


def checks() -> list[Check]:
    unknown_secret = "smoke-" + secrets.token_urlsafe(24)  # no project has it: 404, nothing stored
    return [
        Check(
            "console page",
            "GET",
            "/console",
            200,
            False,
            lambda a: a.headers.get("content-type", "").startswith("text/html"),
        ),
        Check("who the token is", "GET", "/v1/me", 200, True, lambda a: "role" in _json(a)),
        Check(
            "live calls (read API)",
            "GET",
            "/v1/calls/live",
            200,
            True,
            lambda a: isinstance(_json(a).get("calls"), list),
        ),
        Check("a token is required", "GET", "/v1/me", 401, False, _json_error("unauthorized")),
        Check(
            "webhook, unknown secret",
            "GET",
            f"/iptelefon_webhook/{unknown_secret}",
            404,
            False,
            lambda a: bool(_json(a)),
        ),
        Check("unknown route", "GET", "/v1/smoke-no-such-route", 404, False, _json_error("not_found")),
    ]


def run(base_url: str, token: str, client: httpx.Client) -> list[tuple[str, bool, str]]:
    """(check, passed, what came back) for every check against `base_url` (the stage's base: /v1/... follows it)."""
    results = []
    for check in checks():
        headers = {"Authorization": f"Bearer {token}"} if check.authorized else {}
        try:
            answer = client.request(check.method, base_url.rstrip("/") + check.path, headers=headers)
        except httpx.HTTPError as error:
            results.append((check.name, False, f"{type(error).__name__}: {error}"))
            continue
        passed = answer.status_code == check.status and check.body_has(answer)
        results.append((check.name, passed, f"{answer.status_code} (want {check.status})"))
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base-url", help="the stage's ApiUrl output (or https://<DomainName>)")
    parser.add_argument("--token", help="a bot token (any role works); SMOKE_TOKEN in CI")
    parser.add_argument("--stack-file", type=Path, help="the local stack's file: its api_url and demo bot token")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds per request (a cold start included)")
    options = parser.parse_args(argv)
    base_url, token = options.base_url, options.token
    if options.stack_file:
        stack = json.loads(options.stack_file.read_text())
        base_url, token = base_url or stack["api_url"], token or stack["bot_token"]
    if not base_url or not token:
        parser.error("give --base-url and --token (or --stack-file)")
    with httpx.Client(timeout=options.timeout) as client:
        results = run(base_url, token, client)
    for name, passed, detail in results:
        print(f"{'ok  ' if passed else 'FAIL'} {name}: {detail}")
    failed = sum(not passed for _, passed, _ in results)
    print(f"{len(results) - failed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
