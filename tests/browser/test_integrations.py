"""The console's "Интеграции" screen (issue 22) in headless Chromium against the real local stack: the admin adds an
endpoint and sees its secret once, reads the delivery log of the stack's sample receiver after a simulated call, and
replays an event from it."""

from __future__ import annotations

from typing import Any

import httpx
from playwright.sync_api import Page, expect
from support import eventually
from test_console import browser, page, sign_in, stack

__all__ = ["browser", "page", "stack"]


def test_the_admin_adds_an_endpoint_reads_the_delivery_log_and_replays(stack: dict[str, Any], page: Page) -> None:
    # Given a call of the simulator, delivered to the stack's sample receiver
    call = httpx.post(f"{stack['pbx_control_url']}/incoming", json={"phone": "79005550333", "exten": "346"}).json()

    def delivered() -> list[dict[str, Any]] | None:
        came = [e for e in httpx.get(f"{stack['receiver_url']}_events").json() if call["callid"] in e["body"]]
        return came if len(came) >= 3 else None

    eventually(delivered, within=20)
    sign_in(page, stack, stack["admin_token"])
    page.get_by_role("button", name="Интеграции").click()
    # Then the receiver is listed, enabled, for every event
    rows = page.locator("#endpoint-rows tr")
    expect(rows.filter(has_text=stack["receiver_url"])).to_contain_text("включён")
    # When the admin adds an endpoint for completed and missed calls only
    page.get_by_label("Адрес (https)").fill("https://crm.example.com/hooks/iptelefon")
    page.get_by_label("Описание").fill("CRM")
    for label in ("звонит", "отвечен", "запись готова", "звонок бота не состоялся"):
        page.locator("#endpoint-types label", has_text=label).locator("input").uncheck()
    page.get_by_role("button", name="Добавить").click()
    # Then its secret is shown this once, and the endpoint is listed with its events in Russian
    expect(page.locator("#endpoint-status")).to_contain_text("больше он показан не будет")
    assert page.locator("#endpoint-secret-value").input_value().startswith("whsec_")
    expect(rows.filter(has_text="crm.example.com")).to_contain_text("завершён, пропущен")
    # When the admin opens the receiver's delivery log and replays its first event
    rows.filter(has_text=stack["receiver_url"]).get_by_role("button", name="Журнал").click()
    log = page.locator("#delivery-rows tr")
    expect(log.first).to_contain_text("доставлено")
    expect(log.filter(has_text="звонит")).to_have_count(1)
    before = len(httpx.get(f"{stack['receiver_url']}_events").json())
    log.filter(has_text="звонит").get_by_role("button", name="Повторить").click()
    expect(page.locator("#delivery-status")).to_contain_text("отправлено ещё раз")
    # Then the receiver gets it again
    eventually(lambda: len(httpx.get(f"{stack['receiver_url']}_events").json()) > before or None, within=20)
