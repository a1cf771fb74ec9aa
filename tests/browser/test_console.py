"""The console in a real browser: headless Chromium (Debian's package) driven by Playwright, against `make run`.

The journey of the issue: an admin connects the PBX simulator and sets employee 346 to the API method; the operator
346 finds a client and clicks the phone icon; the simulator gets the call with a valid hash and posts its completion;
the card shows the notification and the recording link without a reload. Also: no icon for a disabled employee, a
`tel:` link for the app method, a hostile notification shown as text, and no settings for an operator.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright
from support import LocalStackProcess

from devstack.run import DEMO_SECRET

CHROMIUM = "/usr/bin/chromium"  # Debian's package (`make test` installs it); Playwright's own download is offline here
# As root, in a sandbox without a network: no sandbox, no GPU, no background connections to Google.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PHONE = "79004443322"
TIMEOUT_MS = 20_000


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    # The default dialect (zeon, as `make run`): the operator's call is call-me with src/dst.
    process = LocalStackProcess.start(tmp_path_factory.mktemp("console-stack"), "--webhook-delay", "1")
    info = process.wait_until_running()
    info["_stack_file"] = str(process.stack_file)
    yield info
    process.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    assert Path(CHROMIUM).exists(), f"{CHROMIUM} is missing: `make test` installs Debian's chromium package"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield browser
        browser.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    yield page
    context.close()
    assert not errors, f"the page raised: {errors}"


def iptel(stack: dict[str, Any], *args: str) -> dict[str, Any]:
    command = [str(Path(sys.executable).parent / "iptel"), "--stack-file", stack["_stack_file"], *args]
    done = subprocess.run(command, capture_output=True, text=True, check=True, timeout=60)
    return dict(json.loads(done.stdout))


def sign_in(page: Page, stack: dict[str, Any], token: str) -> None:
    page.goto(stack["console_url"])
    page.get_by_label("Токен доступа").fill(token)
    page.get_by_role("button", name="Войти").click()
    expect(page.locator("#who")).to_be_visible()


def open_card(page: Page, query: str) -> None:
    page.get_by_role("button", name="Клиенты").click()
    page.get_by_label("Телефон или имя").fill(query)
    page.get_by_role("button", name="Найти").click()
    page.locator("#results button").first.click()
    expect(page.locator("#card")).to_be_visible()


def post_webhook(stack: dict[str, Any], **form: str) -> dict[str, Any]:
    answer = httpx.post(stack["webhook_url"], data={"calltype": "IN", "src": PHONE, "talktime": "42", **form})
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


def test_admin_connects_the_pbx_and_sets_an_employee_then_the_operator_calls_from_the_card(
    stack: dict[str, Any], page: Page
) -> None:
    # -- the admin: Телефония → Iptelefon, connected to the PBX simulator -------------------------------------------
    sign_in(page, stack, stack["admin_token"])
    expect(page.get_by_role("heading", name="Телефония → Iptelefon")).to_be_visible()
    page.get_by_label("Адрес сервера").fill(stack["pbx_url"])
    page.get_by_label("Секретный ключ").fill(DEMO_SECRET)
    page.get_by_role("button", name="Сохранить").click()
    expect(page.locator("#telephony-status")).to_have_text("Сохранено.")
    expect(page.locator("#webhook-url")).to_have_value(stack["webhook_url"])
    page.get_by_role("button", name="Проверить подключение").click()
    expect(page.locator("#telephony-status")).to_contain_text("Подключение работает")
    expect(page.locator("#telephony-status")).to_contain_text("call-me")

    # -- the admin: Сотрудники, 346 by the Iptelefon API (the short-number field only for that method) --------------
    page.get_by_role("button", name="Сотрудники").click()
    page.get_by_role("button", name="Изменить Ольга Петрова").click()
    page.get_by_label("Звонки через приложение").check()
    expect(page.get_by_label("Короткий номер сотрудника на АТС")).to_be_hidden()
    page.get_by_label("Звонки по API Iptelefon").check()
    expect(page.get_by_label("Короткий номер сотрудника на АТС")).to_be_visible()
    # the field offers the PBX's extensions (get-points), the simulator's 346, 347, 348
    expect(page.locator("#pbx-points option")).to_have_count(3)
    assert page.locator("#pbx-points option").evaluate_all("options => options.map(o => o.value)") == [
        "346",
        "347",
        "348",
    ]
    page.get_by_label("Короткий номер сотрудника на АТС").fill("346")
    page.locator("#employee-form").get_by_role("button", name="Сохранить").click()
    expect(page.locator("#employee-status")).to_have_text("Сохранено.")
    expect(page.locator("#employee-rows")).to_contain_text("Звонки по API Iptelefon")
    page.get_by_role("button", name="Выйти").click()

    # -- the operator 346: finds the client, clicks the phone icon -------------------------------------------------
    post_webhook(stack, id="console-seed-1")  # the client exists (a telephony client made by a call)
    httpx.delete(stack["pbx_control_url"] + "/requests")
    sign_in(page, stack, stack["operator_token"])
    expect(page.get_by_role("button", name="Телефония")).to_be_hidden()  # no settings for an operator
    open_card(page, "+7 (900) 444-33-22")
    notes_before = page.locator("#card-dialog li").count()
    page.get_by_role("button", name=f"Позвонить +{PHONE}").click()
    expect(page.locator("#call-status")).to_have_text("Звонок: АТС звонит вам, затем клиенту")

    # Then the simulator got the call (its hash checked: it refuses a wrong one) for 346 and the client
    requests = httpx.get(stack["pbx_control_url"] + "/requests").json()
    calls = [r for r in requests if r["method"] == "call-me"]
    assert len(calls) == 1 and calls[0]["valid"] is True, requests
    assert calls[0]["params"] == {"src": "346", "dst": PHONE}, requests
    # and its webhooks (RINGING, ACCEPTED, then the history) land on the open card without a reload: the notification,
    # the recording, completed
    expect(page.locator("#card-dialog li")).to_have_count(notes_before + 1)
    expect(page.locator("#recording")).to_be_visible()
    # the recording, copied into the archive (issue 25): the player plays it from there (moto's S3, a presigned URL)
    expect(page.locator("#recording-state")).to_have_text("Запись: в архиве", timeout=TIMEOUT_MS)
    expect(page.locator("#card-calls")).to_contain_text("запись: в архиве")
    assert "X-Amz-Signature" in (page.locator("#player").get_attribute("src") or "")
    assert player_duration(page) > 1.5  # the simulator's 2 s MP3, decoded by the browser
    expect(page.locator("#card-variables")).to_contain_text("iptelefon_call_record_link")
    expect(page.locator("#call-status")).to_have_text("Звонок: завершён")


def player_duration(page: Page) -> float:
    """The card player's recording loaded by the browser: its duration in seconds (fails if it cannot be decoded)."""
    script = """() => new Promise((ok, fail) => {
        const player = document.getElementById("player");
        player.addEventListener("loadedmetadata", () => ok(player.duration), { once: true });
        const failed = () => fail(new Error("media error " + (player.error && player.error.code)));
        player.addEventListener("error", failed, { once: true });
        player.load();
    })"""
    return float(page.evaluate(script))


def test_the_phone_icon_follows_the_employees_call_method(stack: dict[str, Any], page: Page) -> None:
    post_webhook(stack, id="console-seed-2")
    app_token = iptel(stack, "token", "create", "--project", "demo", "--role", "operator", "--employee", "zoiper")
    sign_in(page, stack, app_token["operator_token"])
    open_card(page, PHONE)
    expect(page.get_by_role("link", name=f"Позвонить +{PHONE}")).to_have_attribute("href", f"tel:+{PHONE}")
    page.get_by_role("button", name="Выйти").click()

    off_token = iptel(stack, "token", "create", "--project", "demo", "--role", "operator", "--employee", "intern")
    sign_in(page, stack, off_token["operator_token"])
    open_card(page, PHONE)
    expect(page.locator("#card-phones li")).to_have_count(1)
    expect(page.locator("#card-phones .phone-icon")).to_have_count(0)


def test_a_hostile_notification_is_shown_as_text(stack: dict[str, Any], page: Page) -> None:
    hostile = "<img src=x onerror=\"document.title='pwned'\">"
    post_webhook(stack, id="console-hostile", exten=hostile)
    sign_in(page, stack, stack["operator_token"])
    open_card(page, PHONE)
    expect(page.locator("#card-dialog")).to_contain_text("<img src=x")
    expect(page.locator("#card-dialog img")).to_have_count(0)
    assert page.title() != "pwned"


def test_an_operator_token_is_refused_on_the_settings_api(stack: dict[str, Any], page: Page) -> None:
    sign_in(page, stack, stack["operator_token"])
    status = page.evaluate(
        """async (token) => (await fetch("v1/settings".replace(/^/, location.pathname.replace(/console$/, "")),
                                         {headers: {Authorization: "Bearer " + token}})).status""",
        stack["operator_token"],
    )
    assert status == 403


def call_me_requests(stack: dict[str, Any]) -> list[dict[str, Any]]:
    return [r for r in httpx.get(stack["pbx_control_url"] + "/requests").json() if r["method"] == "call-me"]


def test_a_double_click_on_the_phone_icon_rings_once(stack: dict[str, Any], page: Page) -> None:
    # Given a client of its own (the per-phone hourly limit is not shared with the other tests) and an open card
    phone = "79005556677"
    httpx.post(stack["webhook_url"], data={"calltype": "IN", "src": phone, "id": "console-double"}).raise_for_status()
    httpx.delete(stack["pbx_control_url"] + "/requests")
    sign_in(page, stack, stack["operator_token"])
    open_card(page, phone)
    sent: list[str | None] = []
    page.on("request", lambda r: sent.append(r.headers.get("idempotency-key")) if r.url.endswith("/call") else None)
    # When the operator double-clicks the phone icon
    page.get_by_role("button", name=f"Позвонить +{phone}").dblclick()
    # Then the PBX got one call: one request left the page (the icon is disabled until the API answers; how long that
    # lasts depends on the machine, so the requests are counted rather than the disabled state caught)
    expect(page.locator("#call-status")).to_have_text("Звонок: АТС звонит вам, затем клиенту")
    expect(page.get_by_role("button", name=f"Позвонить +{phone}")).to_be_enabled()
    page.wait_for_timeout(1000)  # a second call would have reached the simulator by now
    assert len(call_me_requests(stack)) == 1
    assert len(sent) == 1 and sent[0] and sent[0].startswith("console-"), sent

    # When a script sends one click's request twice at once, with its Idempotency-Key
    statuses = page.evaluate(
        """async ([path, token, phone]) => {
             const send = () => fetch(path, {method: "POST", body: JSON.stringify({phone}),
               headers: {Authorization: "Bearer " + token, "Content-Type": "application/json",
                         "Idempotency-Key": "scripted-twice"}}).then((a) => a.status);
             return Promise.all([send(), send()]);
           }""",
        [f"{stack['api_url']}/v1/clients/{client_id(stack, phone)}/call", stack["operator_token"], phone],
    )
    # Then the client rings once more, not twice (the repeat gets the first answer, or 409 while it is in flight)
    page.wait_for_timeout(1000)
    assert 202 in statuses and set(statuses) <= {202, 409}, statuses
    assert len(call_me_requests(stack)) == 2


def client_id(stack: dict[str, Any], phone: str) -> str:
    found = httpx.get(
        f"{stack['api_url']}/v1/clients",
        params={"phone": phone},
        headers={"Authorization": "Bearer " + stack["operator_token"]},
    )
    found.raise_for_status()
    return str(found.json()["clients"][0]["id"])


def test_nothing_but_the_sign_in_box_shows_before_sign_in(stack: dict[str, Any], page: Page) -> None:
    page.goto(stack["console_url"])
    expect(page.get_by_role("heading", name="Вход")).to_be_visible()
    expect(page.locator("#nav")).to_be_hidden()
    expect(page.get_by_role("button", name="Телефония")).to_be_hidden()
    expect(page.locator("#telephony")).to_be_hidden()
    # a wrong token: a Russian message, and still no menu
    page.get_by_label("Токен доступа").fill("not-a-token")
    page.get_by_role("button", name="Войти").click()
    expect(page.locator("#signin-error")).to_contain_text("Токен не подошёл")
    expect(page.locator("#nav")).to_be_hidden()


def test_the_console_speaks_russian(stack: dict[str, Any], page: Page) -> None:
    sign_in(page, stack, stack["admin_token"])
    expect(page.locator("#who")).to_have_text("Демо-проект · администратор")
    # a server error (a new server address without the secret): what is wrong and what to do, in Russian
    expect(page.get_by_label("Адрес сервера")).to_have_value(stack["pbx_url"])  # the stored settings came
    page.get_by_label("Адрес сервера").fill("https://pbx.example.org/b3/api/v2/start.php")
    page.get_by_role("button", name="Сохранить").click()
    status = page.locator("#telephony-status")
    expect(status).to_contain_text("Не сохранено: Проверьте поле «Секретный ключ»")
    assert not re.search(r"must|secret|server_url|required", status.inner_text()), status.inner_text()
    # the demo employees have Russian names, and a disabled one reads as such
    page.get_by_role("button", name="Сотрудники").click()
    expect(page.locator("#employee-rows")).to_contain_text("Пётр Орлов")
    row = page.locator("#employee-rows tr", has_text="Пётр Орлов")
    expect(row).to_contain_text("Звонки отключены")
    names_and_methods = page.locator("#employee-rows td:nth-child(2), #employee-rows td:nth-child(3)").all_inner_texts()
    assert not [t for t in names_and_methods if re.search(r"[A-Za-z]{3}", t.replace("API Iptelefon", ""))]
    # the history's call states
    post_webhook(stack, id="console-russian")
    page.get_by_role("button", name="Выйти").click()
    sign_in(page, stack, stack["operator_token"])
    open_card(page, PHONE)
    expect(page.locator("#card-calls li").first).to_contain_text("отвечен")
    assert "answered" not in page.locator("#card-calls").inner_text()


def test_an_operator_token_for_no_employee_is_not_requested(stack: dict[str, Any], page: Page) -> None:
    sign_in(page, stack, stack["admin_token"])
    page.get_by_role("button", name="Сотрудники").click()
    sent: list[str] = []
    page.on("request", lambda r: sent.append(r.url) if "operator-token" in r.url else None)
    page.get_by_role("button", name="Выдать токен оператора").click()
    expect(page.locator("#employee-status")).to_have_text(
        "Введите ID сотрудника (или нажмите «Изменить» в таблице), затем выдайте токен."
    )
    assert sent == []


def test_the_webhook_url_is_shown_once_then_masked_and_a_random_one_is_one_click(
    stack: dict[str, Any], page: Page
) -> None:
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    webhook = page.locator("#webhook-url")
    # Given an admin who did not make the URL in this tab: masked, nothing to show or copy (never a `{secret}`)
    sign_in(page, stack, stack["admin_token"])
    expect(webhook).to_have_value(re.compile(r"/iptelefon_webhook/•+$"))
    expect(page.get_by_role("button", name="Показать")).to_be_hidden()
    expect(page.locator("#copy-webhook")).to_be_disabled()
    # A grace period out of 0..72: said in Russian, nothing sent
    sent: list[str] = []
    page.on("request", lambda r: sent.append(r.url) if "webhook-token" in r.url else None)
    page.get_by_label("Старый адрес вебхука работает ещё").fill("99")
    page.get_by_role("button", name="Выдать случайный адрес вебхука").click()
    expect(page.locator("#webhook-status")).to_contain_text("от 0 до 72 часов")
    assert sent == []
    # When the admin takes a random webhook URL, the old one kept for an hour
    page.get_by_label("Старый адрес вебхука работает ещё").fill("1")
    page.get_by_role("button", name="Выдать случайный адрес вебхука").click()
    # Then the new URL is shown once, whole, and works; the old one still works for the hour
    expect(page.locator("#webhook-status")).to_contain_text("Старый адрес работает до")
    expect(webhook).to_have_value(re.compile(r"/iptelefon_webhook/[A-Za-z0-9_-]{43}$"))
    new_url = webhook.input_value()
    assert new_url.startswith(stack["api_url"]) and len(sent) == 1
    post = {"calltype": "IN", "src": PHONE, "talktime": "3"}
    assert httpx.post(new_url, data={**post, "id": "via-new-url"}).status_code == 200
    assert httpx.post(stack["webhook_url"], data={**post, "id": "via-old-url"}).status_code == 200
    page.locator("#copy-webhook").click()
    assert page.evaluate("navigator.clipboard.readText()") == new_url
    # masked on "Скрыть", whole again on "Показать"; after a reload the service cannot show it again
    page.get_by_role("button", name="Скрыть").click()
    expect(webhook).to_have_value(re.compile(r"/iptelefon_webhook/•+$"))
    page.get_by_role("button", name="Показать").click()
    expect(webhook).to_have_value(new_url)
    page.reload()
    expect(webhook).to_have_value(re.compile(r"/iptelefon_webhook/•+$"))
    expect(page.locator("#webhook-note")).to_contain_text("не может показать его снова")


def test_a_client_named_in_fio_or_first_and_last_name_is_shown_by_name(stack: dict[str, Any], page: Page) -> None:
    iptel(stack, "client", "add", "--project", "demo", "--phone", "79001230009", "--var", "ФИО=Звонарёва Ольга")
    iptel(stack, "client", "add", "--project", "demo", "--phone", "79001230010",
          "--var", "first_name=Anna", "--var", "last_name=Smirnova")  # fmt: skip
    sign_in(page, stack, stack["operator_token"])
    page.get_by_role("button", name="Клиенты").click()
    page.get_by_label("Телефон или имя").fill("ольга")
    page.get_by_role("button", name="Найти").click()
    expect(page.locator("#results button")).to_have_text(["Звонарёва Ольга"])
    page.get_by_label("Телефон или имя").fill("+7 900 123-00-10")
    page.get_by_role("button", name="Найти").click()
    expect(page.locator("#results button")).to_have_text(["Anna Smirnova"])
    page.locator("#results button").first.click()
    expect(page.locator("#card-title")).to_have_text("Anna Smirnova")


def test_the_phone_icon_keeps_its_colour_on_hover(stack: dict[str, Any], page: Page) -> None:
    post_webhook(stack, id="console-hover")
    sign_in(page, stack, stack["operator_token"])
    open_card(page, PHONE)
    icon = page.get_by_role("button", name=f"Позвонить +{PHONE}")
    style = "e => [getComputedStyle(e).backgroundColor, getComputedStyle(e).color]"
    assert icon.evaluate(style) == ["rgb(20, 99, 216)", "rgb(255, 255, 255)"]
    icon.hover()
    # a darker blue, still white on it (it used to take the pale button hover and fade); `make screenshots` shows it
    assert icon.evaluate(style) == ["rgb(13, 79, 179)", "rgb(255, 255, 255)"]


def test_the_card_dialog_shows_times_and_an_empty_card_says_so(stack: dict[str, Any], page: Page) -> None:
    iptel(stack, "client", "add", "--project", "demo", "--phone", "79001230011")
    sign_in(page, stack, stack["operator_token"])
    open_card(page, "79001230011")
    expect(page.locator("#card-dialog")).to_have_text("Заметок пока нет")
    expect(page.locator("#card-calls")).to_have_text("Звонков пока не было")
    expect(page.locator("#card-variables")).to_have_text("Переменных нет")
    httpx.post(stack["webhook_url"], data={"calltype": "IN", "src": "79001230011", "id": "console-time"})
    expect(page.locator("#card-dialog li time")).to_have_count(1)  # the card refreshes by itself
    assert re.fullmatch(r"\d\d\.\d\d\.\d{4}, \d\d:\d\d:\d\d", page.locator("#card-dialog li time").inner_text())


def test_the_admin_lists_and_revokes_tokens_deletes_an_employee_and_copies_a_new_token(
    stack: dict[str, Any], page: Page
) -> None:
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    page.on("dialog", lambda dialog: dialog.accept())  # the confirmations of delete and revoke
    sign_in(page, stack, stack["admin_token"])
    expect(page.locator("link[rel=icon]")).to_have_attribute("href", "console/favicon.svg")
    assert httpx.get(stack["api_url"] + "/console/favicon.svg").headers["content-type"] == "image/svg+xml"
    page.get_by_role("button", name="Сотрудники").click()
    # the token list names the admin's own token, which it does not offer to revoke
    expect(page.locator("#token-rows tr", has_text="ваш токен")).to_contain_text("администратор")
    # a new employee, a token for them: shown once, with a copy button
    page.get_by_label("ID", exact=True).fill("temp")
    page.get_by_label("Имя", exact=True).fill("Временный Сотрудник")
    page.locator("#employee-form").get_by_role("button", name="Сохранить").click()
    expect(page.locator("#employee-rows")).to_contain_text("Временный Сотрудник")
    page.get_by_role("button", name="Выдать токен оператора").click()
    token = page.locator("#new-token-value")
    expect(token).to_have_value(re.compile(r"^iptb_"))
    page.get_by_role("button", name="Копировать токен").click()
    assert page.evaluate("navigator.clipboard.readText()") == token.input_value()
    expect(page.locator("#token-rows tr", has_text="temp")).to_contain_text("оператор")
    # deleting the employee revokes their token: gone from both lists, and it signs in no more
    page.get_by_role("button", name="Удалить Временный Сотрудник").click()
    expect(page.locator("#employee-rows")).not_to_contain_text("Временный Сотрудник")
    expect(page.locator("#token-rows")).not_to_contain_text("temp")
    me = httpx.get(stack["api_url"] + "/v1/me", headers={"Authorization": "Bearer " + token.input_value()})
    assert me.status_code == 401


def test_the_incoming_call_card_rings_is_answered_and_goes_away_for_its_extension_only(
    stack: dict[str, Any], page: Page, browser: Browser
) -> None:
    # Given a client named by ФИО with one call behind it, and an operator of another extension (347)
    known, unknown = "79007778899", "79007778800"
    iptel(stack, "client", "add", "--project", "demo", "--phone", known, "--var", "ФИО=Соколова Мария")
    post_webhook(stack, id="card-earlier", src=known, exten="346")
    iptel(stack, "employee", "set", "--project", "demo", "--id", "ivan", "--name", "Иван Смирнов", "--method", "api",
          "--short-number", "347")  # fmt: skip
    other_token = iptel(stack, "token", "create", "--project", "demo", "--role", "operator", "--employee", "ivan")
    other_context = browser.new_context(viewport={"width": 1280, "height": 800})
    other_context.set_default_timeout(TIMEOUT_MS)
    other = other_context.new_page()
    sign_in(other, stack, other_token["operator_token"])
    sign_in(page, stack, stack["operator_token"])
    expect(page.locator("#live")).to_be_hidden()  # nothing rings yet
    control = stack["pbx_control_url"]
    # calls that ring long enough to be seen ringing, then talk a little
    httpx.post(control + "/config", json={"ring_seconds": 8, "talk_seconds": 4}).raise_for_status()
    try:
        # When the known client calls 346 and an unknown number calls 347
        httpx.post(control + "/incoming", json={"phone": known, "exten": "346"}).raise_for_status()
        httpx.post(control + "/incoming", json={"phone": unknown, "exten": "347"}).raise_for_status()
        # Then 346's operator sees the known client ringing: name, phone, the last dialog line, not new
        card = page.locator("#live-calls > li")
        expect(card.locator(".live-state")).to_have_text("звонит · сотрудник 346")
        expect(card).to_have_count(1)
        expect(card.locator("h3")).to_have_text("Соколова Мария")
        expect(card.locator(".live-phone")).to_have_text("+" + known)
        expect(card.locator(".live-dialog li")).to_have_count(1)
        expect(card.locator(".live-dialog li")).to_contain_text("Звонок завершён")
        expect(card.locator(".badge")).to_have_count(0)
        # and 347's operator sees only its own call: the unknown number, a new client
        other_card = other.locator("#live-calls > li")
        expect(other_card.locator(".live-state")).to_have_text("звонит · сотрудник 347")
        expect(other_card).to_have_count(1)
        expect(other_card.locator("h3")).to_have_text("+" + unknown + "новый клиент")
        expect(other_card.locator(".badge")).to_have_text("новый клиент")
        # When 346 answers: "в разговоре", still one card
        expect(card.locator(".live-state")).to_have_text("в разговоре · сотрудник 346", timeout=TIMEOUT_MS)
        expect(card).to_have_count(1)
        expect(other_card).not_to_contain_text("Соколова")
        # "Открыть карточку" opens the client's card
        card.get_by_role("button", name="Открыть карточку").click()
        expect(page.locator("#card-title")).to_have_text("Соколова Мария")
        # When the call's history comes, the card goes away (the client card now shows the new call too)
        expect(page.locator("#live")).to_be_hidden(timeout=TIMEOUT_MS)
        expect(page.locator("#card-dialog li")).to_have_count(2, timeout=TIMEOUT_MS)
        expect(other.locator("#live")).to_be_hidden(timeout=TIMEOUT_MS)
    finally:
        httpx.post(control + "/config", json={"ring_seconds": None, "talk_seconds": None}).raise_for_status()
        other_context.close()


def test_a_recording_link_for_signed_in_users_only_opens_the_console_and_plays(
    stack: dict[str, Any], page: Page
) -> None:
    # Given a project whose recordings only signed-in users may hear (issue 25), and a call with a recording
    admin = {"Authorization": f"Bearer {stack['admin_token']}"}
    settings = httpx.put(f"{stack['api_url']}/v1/settings", json={"recording_access": "console"}, headers=admin)
    assert settings.status_code == 200, settings.text
    try:
        pbx = stack["pbx_url"].split("/b3")[0]
        post_webhook(stack, id="console-rec", link=f"{pbx}/records/console-rec.mp3")
        calls = httpx.get(
            f"{stack['api_url']}/v1/calls/console-rec", headers={"Authorization": f"Bearer {stack['bot_token']}"}
        )
        link = calls.json()["recording"]["url"]
        # When a visitor opens the stable link: no recording without signing in, the console's sign-in box instead
        page.goto(link)
        expect(page.get_by_label("Токен доступа")).to_be_visible()
        assert page.url.endswith("#recording=" + link.rsplit("/", 1)[1])
        # Then, signed in, the console plays it
        page.get_by_label("Токен доступа").fill(stack["operator_token"])
        page.get_by_role("button", name="Войти").click()
        expect(page.locator("#recording-state")).to_contain_text("Запись:")
        assert player_duration(page) > 1.5
    finally:
        httpx.put(f"{stack['api_url']}/v1/settings", json={"recording_access": "link"}, headers=admin)
