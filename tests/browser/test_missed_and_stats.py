"""The console's "Пропущенные" and "Статистика" in headless Chromium against the local stack (issue 23): the operator's
queue of callback tasks, a one-click callback that closes its task when the simulator's answered call comes back, a
task closed by hand, and the admin's statistics with the heatmap and the CSV download."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect
from support import LocalStackProcess
from test_console import browser, page, sign_in

__all__ = ["browser", "page"]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    process = LocalStackProcess.start(tmp_path_factory.mktemp("missed-stack"), "--webhook-delay", "1")
    info = process.wait_until_running()
    yield info
    process.stop()


def missed_call(stack: dict[str, Any], call_id: str, phone: str, exten: str) -> None:
    form = {"id": call_id, "calltype": "IN", "src": phone, "exten": exten, "disposition": "NO ANSWER"}
    httpx.post(stack["webhook_url"], data=form).raise_for_status()


def test_the_operator_calls_back_from_the_queue_and_closes_a_task_by_hand(stack: dict[str, Any], page: Page) -> None:
    # Given two clients who missed 346 and one who missed 347
    missed_call(stack, "q-1", "79001110001", "346")
    missed_call(stack, "q-2", "79001110002", "346")
    missed_call(stack, "q-3", "79001110003", "347")
    httpx.delete(stack["pbx_control_url"] + "/requests")
    # When operator 346 opens "Пропущенные"
    sign_in(page, stack, stack["operator_token"])
    page.get_by_role("button", name="Пропущенные").click()
    rows = page.locator("#missed-rows tr")
    # Then their two tasks, oldest first, each with its SLA clock; 347's is not theirs
    expect(rows).to_have_count(2)
    expect(rows.first).to_contain_text("+79001110001")
    expect(rows.nth(1)).to_contain_text("+79001110002")
    expect(rows.first.locator("td").nth(2)).to_contain_text(re.compile(r"осталось|просрочено"))
    expect(page.locator("#missed")).not_to_contain_text("+79001110003")

    # When they click ☎ on the first: the PBX rings 346, then the client; the simulator's answered call comes back
    page.get_by_role("button", name="Позвонить +79001110001").click()
    expect(page.locator("#missed-status")).to_have_text("Звонок: АТС звонит вам, затем клиенту")
    calls = [r for r in httpx.get(stack["pbx_control_url"] + "/requests").json() if r["method"] == "call-me"]
    assert [c["params"] for c in calls] == [{"src": "346", "dst": "79001110001"}]
    # Then that task closes by itself (the queue refreshes by itself)
    expect(rows).to_have_count(1, timeout=20_000)
    expect(rows.first).to_contain_text("+79001110002")

    # When they close the other by hand, with a reason
    page.once("dialog", lambda dialog: dialog.accept("клиент написал в чат"))
    page.get_by_role("button", name="Закрыть задачу +79001110002").click()
    # Then the queue is empty and says so
    expect(page.locator("#missed-status")).to_contain_text("закрыта")
    expect(page.locator("#missed-rows")).to_contain_text("Пропущенных нет")


def test_the_admin_reads_the_statistics_and_downloads_the_csv(stack: dict[str, Any], page: Page) -> None:
    missed_call(stack, "s-1", "79001110011", "346")
    answered = {"id": "s-2", "calltype": "IN", "src": "79001110012", "exten": "346", "talktime": "125"}
    httpx.post(stack["webhook_url"], data=answered).raise_for_status()
    sign_in(page, stack, stack["admin_token"])
    page.get_by_role("button", name="Статистика").click()
    # The last 30 days by default: a row per extension, the total with the previous period beside it, the heatmap
    total = page.locator("#stats-rows tr", has_text="Всего")
    expect(total).to_have_count(1)
    expect(page.locator("#stats-rows")).to_contain_text("Ольга Петрова (346)")
    expect(total.locator("td").first).to_contain_text("(")  # the previous period's number in brackets
    expect(page.locator("#heatmap tr")).to_have_count(8)  # the hours' row and seven weekdays
    expect(page.locator("#heatmap td.heat5").first).to_be_visible()

    with page.expect_download() as download_info:
        page.get_by_role("button", name="Скачать CSV").click()
    path = download_info.value.path()
    lines = list(csv.DictReader(io.StringIO(path.read_text(encoding="utf-8"))))
    totals = [line for line in lines if line["period"] == "current" and line["employee"] == "total"]
    assert len(totals) == 1 and int(totals[0]["calls_in"]) >= 2 and int(totals[0]["missed"]) >= 1

    # A period the other way round: a Russian message naming the field, nothing drawn
    page.get_by_label("С", exact=True).fill("2026-12-10")
    page.get_by_label("по", exact=True).fill("2026-12-01")
    page.get_by_role("button", name="Показать").click()
    expect(page.locator("#stats-status")).to_contain_text("«по»")


def test_an_operator_sees_their_own_row_only(stack: dict[str, Any], page: Page, browser: Browser) -> None:
    missed_call(stack, "o-1", "79001110021", "347")
    sign_in(page, stack, stack["operator_token"])
    page.get_by_role("button", name="Статистика").click()
    expect(page.locator("#stats-rows tr").first).to_contain_text("346")
    expect(page.locator("#stats-rows")).not_to_contain_text("347")
    expect(page.locator("#stats-rows")).not_to_contain_text("Всего")
    expect(page.locator("#heatmap-block")).to_be_hidden()
