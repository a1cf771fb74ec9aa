"""Screenshots of the console for the README, taken from a running `make run` (reads its stack.json).

Run: .venv/bin/python -m devstack.screenshots [--state-dir .local] [--out docs]
Writes console-telephony.png, console-employees.png and console-card.png (a laptop screen), console-card-phone.png
(a phone screen), console-phone-hover.png (the ☎ under the pointer), after posting one call completion so the card
has a notification and a recording, and console-incoming-call.png (that client calling 346 again: «Звонки сейчас»);
console-integrations.png, console-missed.png and console-stats.png (the admin's «Интеграции», «Пропущенные» and
«Статистика», after one missed call).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import httpx
from playwright.sync_api import Page, sync_playwright

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"]
PHONE = "79004443322"


def sign_in(page: Page, console_url: str, token: str) -> None:
    page.goto(console_url)
    page.get_by_label("Токен доступа").fill(token)
    page.get_by_role("button", name="Войти").click()
    page.locator("#who").wait_for()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--state-dir", type=Path, default=Path(".local"))
    parser.add_argument("--out", type=Path, default=Path("docs"))
    args = parser.parse_args(argv)
    stack = json.loads((args.state_dir / "stack.json").read_text())
    args.out.mkdir(parents=True, exist_ok=True)
    form = {"id": "screenshot-1", "calltype": "IN", "src": PHONE, "exten": "346", "talktime": "00:02:35"}
    link = stack["pbx_url"].split("/b3/")[0] + "/records/screenshot-1.mp3"
    httpx.post(stack["webhook_url"], data={**form, "link": link}).raise_for_status()
    missed = {"id": "screenshot-missed", "calltype": "IN", "src": "79004443300", "exten": "346", "disposition": "BUSY"}
    httpx.post(stack["webhook_url"], data=missed).raise_for_status()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1200, "height": 860})
        sign_in(page, stack["console_url"], stack["admin_token"])
        page.screenshot(path=args.out / "console-telephony.png")
        page.get_by_role("button", name="Сотрудники").click()
        page.get_by_role("button", name="Изменить Ольга Петрова").click()
        page.screenshot(path=args.out / "console-employees.png", full_page=True)
        for button, rows, name in (
            ("Интеграции", "#endpoint-rows tr", "console-integrations"),
            ("Пропущенные", "#missed-rows tr", "console-missed"),
            ("Статистика", "#stats-rows tr", "console-stats"),
        ):
            page.get_by_role("button", name=button, exact=True).click()
            page.locator(rows).first.wait_for()
            page.screenshot(path=args.out / f"{name}.png", full_page=True)
        for name, viewport in (("console-card", (1200, 1000)), ("console-card-phone", (390, 844))):
            page = browser.new_page(viewport={"width": viewport[0], "height": viewport[1]})
            sign_in(page, stack["console_url"], stack["operator_token"])
            page.get_by_label("Телефон или имя").fill(PHONE)
            page.get_by_role("button", name="Найти").click()
            page.locator("#results button").first.click()
            page.locator("#card-dialog li").first.wait_for()
            page.screenshot(path=args.out / f"{name}.png", full_page=True)
        # The phone icon under the pointer (an operator of the API method): it keeps its blue, only darker.
        icon = page.locator("#card-phones .phone-icon").first
        icon.hover()
        page.locator("#card-phones").screenshot(path=args.out / "console-phone-hover.png")
        # The incoming-call card: the same client calls 346 and it rings long enough to be seen.
        control = stack["pbx_control_url"]
        httpx.post(control + "/config", json={"ring_seconds": 20, "talk_seconds": 1}).raise_for_status()
        try:
            httpx.post(control + "/incoming", json={"phone": PHONE, "exten": "346"}).raise_for_status()
            page = browser.new_page(viewport={"width": 1200, "height": 860})
            sign_in(page, stack["console_url"], stack["operator_token"])
            page.locator("#live-calls > li").first.wait_for()
            page.locator("#live").screenshot(path=args.out / "console-incoming-call.png")
        finally:
            httpx.post(control + "/config", json={"ring_seconds": None, "talk_seconds": None}).raise_for_status()
        browser.close()
    print(f"screenshots in {args.out}/")


if __name__ == "__main__":
    main()
