// The operator console: plain DOM code, no framework, no inline script (the CSP forbids it). Everything that came
// from the PBX or a user is put on the page as text (textContent), never as markup.
"use strict";

const API = location.pathname.replace(/\/console\/?.*$/, ""); // the API this page is served by
const TOKEN_KEY = "iptelefon-token"; // the tab's session only: never in a URL, gone when the tab closes
const RECORD_LINK = "iptelefon_call_record_link";
const METHODS = { disabled: "Звонки отключены", app: "Звонки через приложение", api: "Звонки по API Iptelefon" };
// The API answers in machine-readable English; the operator reads Russian. Call and attempt states:
const STATES = {
  starting: "начинается",
  initiated: "АТС звонит вам, затем клиенту",
  unknown: "ответ АТС не прочитан, звонок мог начаться: не звоните снова, дождитесь результата",
  completed: "завершён",
  failed: "не состоялся",
  answered: "отвечен",
  missed: "пропущен",
  busy: "занято",
  ringing: "звонит",
};
// Error codes (README "Errors") -> what happened and what to do.
const ERRORS = {
  validation_error: "Значение не подходит: проверьте поле и попробуйте снова.",
  invalid_json: "Запрос не прочитан: обновите страницу и попробуйте снова.",
  invalid_phone: "Номер телефона не распознан: введите его полностью, с кодом страны.",
  unauthorized: "Токен не подошёл или отозван: войдите снова с действующим токеном.",
  forbidden: "Это действие недоступно для вашей роли: обратитесь к администратору проекта.",
  calls_disabled: "Звонки для вас отключены: администратор может включить их в разделе «Сотрудники».",
  country_not_allowed: "Звонки в эту страну запрещены настройками проекта.",
  number_not_allowed: "На такие номера (платные, служебные) звонить запрещено настройками проекта.",
  phone_not_of_client: "Этого номера нет у клиента: позвоните по номеру из карточки.",
  not_found: "Не найдено: возможно, запись удалили. Обновите страницу.",
  conflict: "Такой запрос уже выполняется: подождите несколько секунд.",
  rate_limited: "Слишком много звонков подряд: подождите и попробуйте позже.",
  pbx_error: "АТС отказала: проверьте адрес сервера и секретный ключ в разделе «Телефония».",
  pbx_timeout: "АТС не ответила вовремя: попробуйте ещё раз через минуту.",
  storage_unavailable: "Сервис временно недоступен: попробуйте ещё раз через минуту.",
  storage_rejected: "Сервис не сохранил данные: попробуйте ещё раз через минуту.",
  phone_shared_too_widely: "Этот номер есть у слишком многих клиентов: уточните поиск по имени.",
  payload_too_large: "Слишком большой запрос: сократите данные.",
  unsupported_media_type: "Запрос не прочитан: обновите страницу и попробуйте снова.",
  internal_error: "Внутренняя ошибка сервиса: попробуйте ещё раз; если повторится, сообщите администратору.",
};
// The fields a 400 names, as the forms label them, and what each one needs.
const FIELDS = {
  server_url: "«Адрес сервера»: нужен полный https-адрес start.php на публичном сервере АТС, без логина и пароля",
  secret:
    "«Секретный ключ»: при смене адреса сервера введите ключ заново; ключ выдаёт менеджер Iptelefon " +
    "(17–200 латинских букв, цифр или знаков . _ ~ -)",
  grace_hours: "«Старый адрес вебхука работает ещё»: от 0 до 72 часов",
  from: "«С»: дата начала периода",
  to: "«по»: не раньше начала, период не длиннее 366 дней",
  reason: "«Причина»: не пустая, до 500 знаков",
  auth_mode: "«Подпись запросов»",
  employee_id: "«ID»: латинские буквы, цифры, точка, дефис или подчёркивание",
  name: "«Имя»: не пустое",
  call_method: "«Способ совершения звонков»",
  short_number: "«Короткий номер»: от 2 до 8 цифр",
  phone: "«Телефон»",
  q: "«Телефон или имя»",
  url: "«Адрес»: нужен полный https-адрес на публичном сервере, без логина и пароля",
  description: "«Описание»: до 500 знаков",
  event_types: "«События»: отметьте хотя бы одно",
};
// Call events (README "Call events") and what a delivery came to.
const EVENT_TYPES = {
  "call.ringing": "звонит",
  "call.answered": "отвечен",
  "call.completed": "завершён",
  "call.missed": "пропущен",
  "recording.ready": "запись готова",
  "call.attempt_failed": "звонок бота не состоялся",
  "callback.overdue": "перезвон просрочен",
};
const OUTCOMES = {
  delivered: "доставлено",
  retry: "ошибка, повторим",
  given_up: "не доставлено",
  gone: "адрес удалён (410)",
  disabled: "адрес отключён",
};
const REFRESH_MS = 3000;
// Звонки сейчас: polled every second with the last ETag (most answers are a bodiless 304), paused in a hidden tab.
const LIVE_POLL_MS = 1000;
const LIVE_STATES = { ringing: "звонит", answered: "в разговоре" };
const ROLES = { admin: "администратор", operator: "оператор", bot: "бот" };

const $ = (id) => document.getElementById(id);
let me = null;
// The full webhook URL made in this tab (a secret typed here, or a random token just issued): kept in memory only,
// shown on "Показать". The service cannot send it again (a token is stored as a hash, the PBX secret is write-only).
let knownWebhookUrl = null;
let webhookShown = false;
let cardTimer = null;
let callStarting = false; // a card call's request is on its way: the phone icons are disabled
let liveTimer = null;
let liveTag = null; // the ETag of the last list shown
let livePolling = false; // one poll at a time: a slow answer is never overtaken by an older one

function el(tag, text, attrs = {}) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = String(text);
  for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, value);
  return node;
}

async function api(method, path, body, extraHeaders = {}) {
  const headers = { Authorization: "Bearer " + sessionStorage.getItem(TOKEN_KEY), ...extraHeaders };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let answer;
  try {
    answer = await fetch(API + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  } catch (failure) {
    throw Object.assign(new Error("Нет связи с сервисом: проверьте интернет и попробуйте снова."), { status: 0 });
  }
  const data = await answer.json().catch(() => ({}));
  if (!answer.ok) {
    const error = new Error(russianError(data, answer.status));
    error.status = answer.status;
    error.code = data.error;
    throw error;
  }
  return data;
}

function russianError(data, status) {
  const fields = (data.details || []).map((detail) => FIELDS[detail.field]).filter(Boolean);
  if (data.error === "validation_error" && fields.length) return "Проверьте поле " + fields.join("; ") + ".";
  return ERRORS[data.error] || `Ошибка ${status}: попробуйте ещё раз; если повторится, сообщите администратору.`;
}

// One key per click: a repeat of the same request (a retry, a script sending it twice) rings once.
function newIdempotencyKey() {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return "console-" + Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

// -- sign in, pages ---------------------------------------------------------------------------------------------------
async function signIn(token) {
  sessionStorage.setItem(TOKEN_KEY, token);
  try {
    me = await api("GET", "/v1/me");
  } catch (error) {
    sessionStorage.removeItem(TOKEN_KEY);
    $("signin-error").textContent = error.status === 401 ? "Токен не подошёл: проверьте, что скопировали его целиком." : error.message;
    return;
  }
  $("signin").hidden = true;
  $("nav").hidden = $("who").hidden = $("signout").hidden = false;
  const name = me.employee ? `${me.employee.name} (${METHODS[me.employee.call_method]})` : ROLES[me.role] || me.role;
  $("who").textContent = `${me.project.name} · ${name}`;
  for (const button of document.querySelectorAll("#nav button")) {
    button.hidden = button.dataset.role === "admin" && me.role !== "admin";
  }
  show(me.role === "admin" ? "telephony" : "clients");
  if (me.role === "operator" || me.role === "admin") startLivePolling();
  await openLinkedRecording();
}

function show(page) {
  if (!me) return; // nothing opens before sign-in
  for (const id of ["telephony", "employees", "integrations", "clients", "missed", "stats"]) $(id).hidden = id !== page;
  for (const button of document.querySelectorAll("#nav button")) {
    button.setAttribute("aria-current", button.dataset.page === page ? "page" : "false");
  }
  if (page !== "clients") stopCardRefresh();
  if (page !== "missed") stopMissedRefresh();
  if (page === "missed") startMissedRefresh();
  if (page === "stats") showStatsPage();
  if (page === "telephony") loadSettings();
  if (page === "employees") loadEmployees();
  if (page === "integrations") loadEndpoints();
}

// -- Телефония → Iptelefon --------------------------------------------------------------------------------------------
async function loadSettings() {
  const status = $("telephony-status");
  try {
    const settings = await api("GET", "/v1/settings");
    $("server_url").value = settings.server_url;
    $("auth_mode").value = settings.auth_mode;
    lastSettings = settings;
    showWebhookUrl(settings);
  } catch (error) {
    status.textContent = error.message;
  }
}

const MASK = "••••••••••••";

function showWebhookUrl(settings) {
  const known = knownWebhookUrl !== null;
  const masked = settings.webhook_url_template.replace(/\{(secret|token)\}$/, MASK);
  $("webhook-url").value = known && webhookShown ? knownWebhookUrl : known ? knownWebhookUrl.replace(/[^/]+$/, MASK) : masked;
  $("show-webhook").hidden = !known;
  $("show-webhook").textContent = webhookShown ? "Скрыть" : "Показать";
  $("copy-webhook").disabled = !known;
  $("webhook-note").textContent = known
    ? "Адрес показан один раз: скопируйте его и передайте менеджеру Iptelefon. После обновления страницы его не будет видно."
    : settings.webhook_path === "random"
      ? "Адрес со случайным токеном: сервис хранит только его отпечаток и не может показать его снова. " +
        "Потеряли — выдайте новый случайный адрес."
      : "Последняя часть адреса — секретный ключ Iptelefon: он не показывается после сохранения. " +
        "Введите ключ заново или выдайте случайный адрес, чтобы увидеть полный адрес.";
}

let lastSettings = null;

function toggleWebhookUrl() {
  webhookShown = !webhookShown;
  showWebhookUrl(lastSettings);
}

function graceHours() {
  const field = $("grace_hours");
  return field.checkValidity() ? Number(field.value) : null;
}

async function issueWebhookToken() {
  const status = $("webhook-status");
  const grace = graceHours();
  if (grace === null) {
    status.textContent = "Проверьте поле " + FIELDS.grace_hours + ".";
    $("grace_hours").focus();
    return;
  }
  try {
    const issued = await api("POST", "/v1/settings/webhook-token", { grace_hours: grace });
    knownWebhookUrl = issued.webhook_url;
    webhookShown = true; // shown this once
    lastSettings = await api("GET", "/v1/settings");
    showWebhookUrl(lastSettings);
    status.textContent = `Новый адрес вебхука выдан. ${oldUrlUntil(issued.old_webhook_url_valid_until)}`;
  } catch (error) {
    status.textContent = "Адрес не выдан: " + error.message;
  }
}

function oldUrlUntil(iso) {
  const until = new Date(iso);
  return until <= new Date()
    ? "Старый адрес больше не работает."
    : `Старый адрес работает до ${until.toLocaleString("ru-RU")}.`;
}

async function saveSettings(event) {
  event.preventDefault();
  const body = { server_url: $("server_url").value.trim(), auth_mode: $("auth_mode").value };
  const secret = $("secret").value.trim();
  if (secret) body.secret = secret;
  body.grace_hours = graceHours();
  const status = $("telephony-status");
  try {
    const settings = await api("PUT", "/v1/settings", body);
    if (secret && settings.webhook_path === "pbx-secret") {
      knownWebhookUrl = settings.webhook_url_template.replace("{secret}", secret);
      webhookShown = true; // shown this once
    }
    $("secret").value = "";
    lastSettings = settings;
    showWebhookUrl(settings);
    status.textContent = settings.old_webhook_url_valid_until
      ? `Сохранено. ${oldUrlUntil(settings.old_webhook_url_valid_until)}`
      : "Сохранено.";
  } catch (error) {
    const refused = error.code === "conflict" ? "Этот ключ нельзя использовать: попросите у менеджера Iptelefon новый." : "";
    status.textContent = "Не сохранено: " + (refused || error.message);
  }
}

async function checkConnection() {
  const status = $("telephony-status");
  status.textContent = "Проверяем…";
  try {
    const result = await api("POST", "/v1/settings/check");
    const listed = (names) => (names === null ? "АТС не сообщила" : names.join(", ") || "—");
    status.textContent =
      `Подключение работает (${result.ms} мс). Методы АТС: ${listed(result.methods)}. ` +
      `Внутренние номера: ${listed(result.points)}`;
  } catch (error) {
    status.textContent = "Нет подключения: " + error.message;
  }
}

async function copy(text, status) {
  try {
    await navigator.clipboard.writeText(text);
    status.textContent = "Скопировано.";
  } catch (error) {
    status.textContent = "Не удалось скопировать: выделите текст и нажмите Ctrl+C.";
  }
}

// -- Сотрудники -------------------------------------------------------------------------------------------------------
// The PBX's extensions (get-points) offered for the short number; a PBX without that list offers nothing.
async function loadPoints() {
  const note = $("pbx-points-note");
  try {
    const { points } = await api("GET", "/v1/pbx/points");
    $("pbx-points").replaceChildren(...points.map((point) => el("option", null, { value: point })));
    note.textContent = points.length ? "Номера из АТС: выберите из списка или введите свой." : "";
  } catch (error) {
    $("pbx-points").replaceChildren();
    note.textContent = "Список номеров из АТС недоступен: " + error.message;
  }
}

// A table body with nothing in it says so, in one row across the columns.
function emptyRow(columns, text) {
  const row = el("tr");
  row.append(el("td", text, { colspan: String(columns), class: "empty" }));
  return row;
}

async function loadEmployees() {
  loadPoints();
  loadTokens();
  const rows = $("employee-rows");
  const { employees } = await api("GET", "/v1/employees");
  rows.replaceChildren();
  if (!employees.length) rows.append(emptyRow(5, "Сотрудников пока нет: добавьте первого в форме ниже."));
  for (const employee of employees) {
    const row = el("tr");
    row.append(el("td", employee.id), el("td", employee.name), el("td", METHODS[employee.call_method]));
    row.append(el("td", employee.short_number || ""));
    const edit = el("button", "Изменить", { type: "button", "aria-label": "Изменить " + employee.name });
    edit.addEventListener("click", () => editEmployee(employee));
    const remove = el("button", "Удалить", { type: "button", "aria-label": "Удалить " + employee.name });
    remove.addEventListener("click", () => deleteEmployee(employee));
    const cell = el("td", null, { class: "row-buttons" });
    cell.append(edit, remove);
    row.append(cell);
    rows.append(row);
  }
}

async function deleteEmployee(employee) {
  if (!confirm(`Удалить сотрудника «${employee.name}»? Его токены оператора перестанут работать.`)) return;
  const status = $("employee-status");
  try {
    await api("DELETE", "/v1/employees/" + encodeURIComponent(employee.id));
    status.textContent = `Сотрудник «${employee.name}» удалён.`;
    await loadEmployees();
  } catch (error) {
    status.textContent = "Не удалено: " + error.message;
  }
}

async function loadTokens() {
  const rows = $("token-rows");
  try {
    const { tokens } = await api("GET", "/v1/tokens");
    rows.replaceChildren();
    if (!tokens.length) rows.append(emptyRow(5, "Токенов нет."));
    for (const token of tokens) {
      const row = el("tr");
      const created = token.created_at ? new Date(token.created_at).toLocaleString("ru-RU") : "—";
      row.append(el("td", token.token_id), el("td", ROLES[token.role] || token.role));
      row.append(el("td", token.employee_id || "—"), el("td", created));
      const cell = el("td");
      if (token.token_id === me.token_id) {
        cell.textContent = "ваш токен";
      } else {
        const revoke = el("button", "Отозвать", { type: "button", "aria-label": "Отозвать " + token.token_id });
        revoke.addEventListener("click", () => revokeToken(token));
        cell.append(revoke);
      }
      row.append(cell);
      rows.append(row);
    }
  } catch (error) {
    $("token-status").textContent = error.message;
  }
}

async function revokeToken(token) {
  if (!confirm(`Отозвать токен ${token.token_id}? Он сразу перестанет работать.`)) return;
  try {
    await api("DELETE", "/v1/tokens/" + encodeURIComponent(token.token_id));
    $("token-status").textContent = `Токен ${token.token_id} отозван.`;
    await loadTokens();
  } catch (error) {
    $("token-status").textContent = "Не отозван: " + error.message;
  }
}

function editEmployee(employee) {
  $("employee_id").value = employee.id;
  $("employee_name").value = employee.name;
  document.querySelector(`input[name=call_method][value=${employee.call_method}]`).checked = true;
  $("short_number").value = employee.short_number || "";
  showShortNumber();
  $("employee_name").focus();
}

function chosenMethod() {
  return document.querySelector("input[name=call_method]:checked").value;
}

function showShortNumber() {
  const api = chosenMethod() === "api";
  $("short-number-field").hidden = !api;
  $("short_number").required = api;
}

async function saveEmployee(event) {
  event.preventDefault();
  const id = $("employee_id").value.trim();
  const method = chosenMethod();
  const body = { name: $("employee_name").value.trim(), call_method: method };
  if (method === "api") body.short_number = $("short_number").value.trim();
  try {
    await api("PUT", "/v1/employees/" + encodeURIComponent(id), body);
    $("employee-status").textContent = "Сохранено.";
    await loadEmployees();
  } catch (error) {
    $("employee-status").textContent = "Не сохранено: " + error.message;
  }
}

async function issueOperatorToken() {
  const id = $("employee_id").value.trim();
  if (!id) {
    $("employee-status").textContent = "Введите ID сотрудника (или нажмите «Изменить» в таблице), затем выдайте токен.";
    $("employee_id").focus();
    return;
  }
  try {
    const issued = await api("POST", `/v1/employees/${encodeURIComponent(id)}/operator-token`);
    $("employee-status").textContent = `Токен оператора для «${id}» показан один раз: скопируйте его и передайте сотруднику.`;
    $("new-token-value").value = issued.token;
    $("new-token").hidden = false;
    loadTokens();
  } catch (error) {
    $("employee-status").textContent = error.message;
  }
}

// -- Клиенты и карточка клиента ---------------------------------------------------------------------------------------
async function search(event) {
  event.preventDefault();
  const results = $("results");
  results.replaceChildren();
  try {
    const found = await api("GET", "/v1/clients?q=" + encodeURIComponent($("search").value.trim()));
    $("search-status").textContent = found.clients.length ? "" : "Никого не нашли";
    for (const client of found.clients) {
      const label = clientName(client);
      const button = el("button", label, { type: "button" });
      button.addEventListener("click", () => openCard(client.id));
      const item = el("li");
      item.append(button);
      results.append(item);
    }
  } catch (error) {
    $("search-status").textContent = error.message;
  }
}

// The API names the client by the project's rule (`display_name`: name, ФИО, Имя, first_name + last_name, …).
function clientName(client) {
  return client.display_name || client.phone_e164 || client.id;
}

async function openCard(clientId) {
  stopCardRefresh();
  $("call-status").textContent = "";
  await renderCard(clientId);
  $("card").hidden = false;
  cardTimer = setInterval(() => renderCard(clientId).catch(() => {}), REFRESH_MS); // new calls appear by themselves
}

function stopCardRefresh() {
  if (cardTimer) clearInterval(cardTimer);
  cardTimer = null;
}

async function renderCard(clientId) {
  const path = "/v1/clients/" + encodeURIComponent(clientId);
  const [client, history] = await Promise.all([
    api("GET", path),
    api("GET", "/v1/calls?client_id=" + encodeURIComponent(clientId)),
  ]);
  $("card-title").textContent = clientName(client);
  renderPhones(client);
  const variables = $("card-variables");
  variables.replaceChildren();
  for (const [name, value] of Object.entries(client.variables)) variables.append(el("dt", name), el("dd", value));
  await showRecording(history.calls.find((call) => call.recording), client.variables[RECORD_LINK]);
  if (!Object.keys(client.variables).length) variables.append(el("dt", "Переменных нет", { class: "empty" }));
  $("card-dialog").replaceChildren(...listOr(client.dialog.map(dialogLine), "Заметок пока нет"));
  $("card-calls").replaceChildren(...listOr(history.calls.map(callLine), "Звонков пока не было"));
}

// An empty list says so (one grey line) rather than showing nothing.
function listOr(items, emptyText) {
  return items.length ? items : [el("li", emptyText, { class: "empty" })];
}

function dialogLine(note) {
  const item = el("li");
  const when = new Date(note.created_at);
  item.append(el("time", when.toLocaleString("ru-RU"), { datetime: note.created_at }), " ", note.text);
  return item;
}

const DIRECTIONS = { in: "входящий", out: "исходящий" };

function describeCall(call) {
  const when = new Date(call.started_at || call.received_at).toLocaleString("ru-RU");
  const talk = call.talk_seconds ? `${Math.floor(call.talk_seconds / 60)}:${String(call.talk_seconds % 60).padStart(2, "0")}` : "—";
  const who = call.employee ? `сотрудник ${call.employee}` : "";
  return [when, DIRECTIONS[call.direction] || call.direction, talk, who, STATES[call.status] || call.status]
    .filter(Boolean)
    .join(" · ");
}

// -- the recording player (issue 25): the archive, through GET /v1/recordings/{id} -------------------------------------
const RECORDING_STATES = { archived: "в архиве", pending: "копируется", failed: "не удалось" };
let playerRecording = null; // "<recording id>:<state>" the player holds: a refresh of the card does not restart it

function recordingIdOf(recording) {
  return recording.url.split("/r/").pop();
}

function recordingText(recording) {
  const state = RECORDING_STATES[recording.state] || recording.state;
  return recording.state === "failed" && recording.reason ? `${state}: ${recording.reason}` : state;
}

// The latest call's recording in the card's player; a call stored without our link plays the variable's link.
async function showRecording(call, variableLink) {
  $("recording").hidden = !call && !variableLink;
  if (call) return playRecording(recordingIdOf(call.recording), call.recording.state);
  if (variableLink && $("player").getAttribute("src") !== variableLink) $("player").setAttribute("src", variableLink);
}

// The URL of a recording now (a presigned archive URL of a few minutes, or the PBX's link while it is copied).
async function playRecording(recordingId, state, { force = false } = {}) {
  const key = recordingId + ":" + state;
  if (!force && (playerRecording === key || (playerRecording?.startsWith(recordingId + ":") && !$("player").paused))) return;
  const found = await api("GET", "/v1/recordings/" + encodeURIComponent(recordingId));
  playerRecording = recordingId + ":" + found.state;
  $("player").setAttribute("src", found.url);
  $("player").dataset.recordingId = recordingId;
  $("recording-state").textContent = "Запись: " + recordingText(found);
  $("recording").hidden = false;
}

function callLine(call) {
  const item = el("li", describeCall(call));
  if (!call.recording) return item;
  item.append(" · запись: " + recordingText(call.recording) + " ");
  const button = el("button", "▶", { type: "button", class: "play", "aria-label": "Слушать запись" });
  button.addEventListener("click", () => playRecording(recordingIdOf(call.recording), call.recording.state, { force: true }).then(() => $("player").play()));
  item.append(button);
  return item;
}

// A stable link of a project that lets only signed-in users listen opens the console with `#recording=<id>`.
async function openLinkedRecording() {
  const found = /^#recording=([A-Za-z0-9_-]{16,64})$/.exec(location.hash);
  if (!found) return;
  show("clients");
  $("card-title").textContent = "Запись звонка";
  $("card").hidden = false;
  try {
    await playRecording(found[1], "", { force: true });
  } catch (error) {
    $("recording").hidden = false;
    $("recording-state").textContent = error.message;
  }
}

function phonesOf(client) {
  const phones = [];
  if (client.phone) phones.push(client.phone);
  for (const value of Object.values(client.variables)) {
    const digits = value.replace(/\D/g, "");
    if (/^\+?[\d\s()\-]{11,20}$/.test(value.trim()) && digits.length >= 11 && !phones.includes(digits)) phones.push(digits);
  }
  return phones;
}

function renderPhones(client) {
  const list = $("card-phones");
  list.replaceChildren();
  const method = me.employee ? me.employee.call_method : "disabled";
  if (!phonesOf(client).length) list.append(el("li", "Телефонов нет", { class: "empty" }));
  for (const phone of phonesOf(client)) {
    const item = el("li", "+" + phone + " ");
    const icon = phoneIcon(method, client.id, phone, $("call-status"));
    if (icon) item.append(icon);
    list.append(item);
  }
}

// The ☎ of the signed-in employee's call method (the card's and the missed-call queue's): a `tel:` link for a
// softphone, a PBX call for the API method, nothing when calls are disabled.
function phoneIcon(method, clientId, phone, status) {
  if (method === "app") {
    return el("a", "☎", { class: "phone-icon", href: "tel:+" + phone, "aria-label": "Позвонить +" + phone });
  }
  if (method !== "api") return null;
  const button = el("button", "☎", { type: "button", class: "phone-icon", "aria-label": "Позвонить +" + phone });
  button.disabled = callStarting; // the page refreshes every few seconds: a new icon stays disabled too
  button.addEventListener("click", () => callByApi(clientId, phone, status));
  return button;
}

function setCallStarting(starting) {
  callStarting = starting;
  for (const button of document.querySelectorAll("button.phone-icon")) button.disabled = starting;
}

async function callByApi(clientId, phone, status) {
  if (callStarting) return; // one click, one call: a second click while the first starts does nothing
  setCallStarting(true);
  status.textContent = "Звонок: " + STATES.starting + "…";
  try {
    const path = `/v1/clients/${encodeURIComponent(clientId)}/call`;
    const started = await api("POST", path, { phone }, { "Idempotency-Key": newIdempotencyKey() });
    status.textContent = "Звонок: " + STATES[started.status];
    followAttempt(started.attempt_id, status);
  } catch (error) {
    status.textContent = "Звонок не начат: " + error.message;
  } finally {
    setCallStarting(false);
  }
}

function followAttempt(attemptId, status) {
  const timer = setInterval(async () => {
    try {
      const attempt = await api("GET", "/v1/calls/" + encodeURIComponent(attemptId));
      if (attempt.status === "completed" || attempt.status === "failed") {
        clearInterval(timer);
        status.textContent = "Звонок: " + STATES[attempt.status];
      }
    } catch (error) {
      clearInterval(timer);
    }
  }, REFRESH_MS / 2);
}

// -- Звонки сейчас: the incoming-call card ---------------------------------------------------------------------------
function startLivePolling() {
  liveTimer = setInterval(pollLive, LIVE_POLL_MS);
  document.addEventListener("visibilitychange", () => document.hidden || pollLive());
  pollLive();
}

function stopLivePolling() {
  if (liveTimer) clearInterval(liveTimer);
  liveTimer = null;
  $("live").hidden = true;
}

async function pollLive() {
  if (document.hidden || livePolling || !liveTimer) return;
  livePolling = true;
  try {
    const headers = { Authorization: "Bearer " + sessionStorage.getItem(TOKEN_KEY) };
    if (liveTag) headers["If-None-Match"] = liveTag;
    const answer = await fetch(API + "/v1/calls/live", { headers, cache: "no-store" });
    if (answer.status === 304) return; // nothing changed since the list shown
    if (answer.status === 401 || answer.status === 403) return stopLivePolling();
    if (!answer.ok) return; // the next poll tries again
    const { calls } = await answer.json();
    liveTag = answer.headers.get("ETag");
    renderLive(calls);
  } catch (failure) {
    // no connection now: the next poll tries again
  } finally {
    livePolling = false;
  }
}

function renderLive(calls) {
  $("live-calls").replaceChildren(...calls.map(liveCard));
  $("live").hidden = !calls.length;
}

// One call: who calls (name, phone, "новый клиент"), ringing or in talk, the last dialog lines, and the card button.
// Everything the PBX or a bot sent goes in as text.
function liveCard(call) {
  const client = call.client || { display_name: null, phone_e164: call.client_phone_e164, is_new: false, dialog: [] };
  const phone = client.phone_e164 || call.client_phone_e164 || "";
  const item = el("li", null, { class: "live-call", "data-state": call.state, "data-call": call.call_key });
  const title = el("h3", client.display_name || phone || "Номер не определён");
  if (client.is_new) title.append(el("span", "новый клиент", { class: "badge" }));
  item.append(title);
  if (client.display_name && phone) item.append(el("p", phone, { class: "live-phone" }));
  const where = call.employee ? ` · сотрудник ${call.employee}` : "";
  item.append(el("p", (LIVE_STATES[call.state] || call.state) + where, { class: "live-state" }));
  if (client.dialog.length) {
    const lines = el("ol", null, { class: "live-dialog", "aria-label": "Последние записи диалога" });
    lines.append(...client.dialog.map(dialogLine));
    item.append(lines);
  }
  const open = el("button", "Открыть карточку", { type: "button" });
  open.addEventListener("click", () => {
    show("clients");
    openCard(call.client_id).catch((error) => ($("search-status").textContent = error.message));
  });
  item.append(open);
  return item;
}

// -- Интеграции: endpoints of call events, their delivery log, replays ----------------------------------------------------
function showSecret(secret, text) {
  $("endpoint-secret-value").value = secret;
  $("endpoint-secret").hidden = false;
  $("endpoint-status").textContent = text;
}

async function loadEndpoints() {
  const rows = $("endpoint-rows");
  try {
    const { endpoints } = await api("GET", "/v1/endpoints");
    rows.replaceChildren();
    if (!endpoints.length) rows.append(emptyRow(5, "Адресов пока нет: добавьте первый в форме ниже."));
    for (const endpoint of endpoints) {
      const row = el("tr");
      const types = endpoint.event_types.map((type) => EVENT_TYPES[type] || type).join(", ");
      const state = endpoint.enabled ? "включён" : "отключён: " + (endpoint.disabled_reason || "");
      row.append(el("td", endpoint.url), el("td", endpoint.description), el("td", types), el("td", state));
      const cell = el("td", null, { class: "row-buttons" });
      const actions = [
        ["Журнал", () => loadDeliveries(endpoint)],
        ["Повторить неудачные", () => replayFailed(endpoint)],
        ["Новый секрет", () => rotateSecret(endpoint)],
        ["Удалить", () => deleteEndpoint(endpoint)],
      ];
      for (const [label, action] of actions) {
        const button = el("button", label, { type: "button", "aria-label": `${label}: ${endpoint.url}` });
        button.addEventListener("click", action);
        cell.append(button);
      }
      row.append(cell);
      rows.append(row);
    }
  } catch (error) {
    $("endpoint-status").textContent = error.message;
  }
}

async function addEndpoint(event) {
  event.preventDefault();
  const types = Array.from(document.querySelectorAll("#endpoint-types input:checked"), (box) => box.value);
  const body = { url: $("endpoint_url").value.trim(), description: $("endpoint_description").value, event_types: types };
  try {
    const made = await api("POST", "/v1/endpoints", body);
    $("endpoint-form").reset();
    showSecret(made.secret, "Адрес добавлен. Скопируйте секрет подписи сейчас: больше он показан не будет.");
    await loadEndpoints();
  } catch (error) {
    $("endpoint-status").textContent = "Не добавлено: " + error.message;
  }
}

async function rotateSecret(endpoint) {
  if (!confirm(`Выдать новый секрет для ${endpoint.url}? Старый будет подписывать события ещё 24 часа.`)) return;
  try {
    const rotated = await api("POST", `/v1/endpoints/${encodeURIComponent(endpoint.endpoint_id)}/rotate-secret`, {});
    const until = rotated.previous_valid_until ? new Date(rotated.previous_valid_until).toLocaleString("ru-RU") : "—";
    showSecret(rotated.secret, `Новый секрет выдан (показан один раз); старый подписывает события до ${until}.`);
  } catch (error) {
    $("endpoint-status").textContent = "Секрет не выдан: " + error.message;
  }
}

async function deleteEndpoint(endpoint) {
  if (!confirm(`Удалить адрес ${endpoint.url}? События на него больше не пойдут.`)) return;
  try {
    await api("DELETE", "/v1/endpoints/" + encodeURIComponent(endpoint.endpoint_id));
    $("endpoint-status").textContent = "Адрес удалён.";
    $("deliveries").hidden = true;
    await loadEndpoints();
  } catch (error) {
    $("endpoint-status").textContent = "Не удалено: " + error.message;
  }
}

async function replayFailed(endpoint) {
  const since = new Date(Date.now() - 24 * 3600 * 1000).toISOString();
  try {
    const done = await api("POST", `/v1/endpoints/${encodeURIComponent(endpoint.endpoint_id)}/replay`, { since });
    $("endpoint-status").textContent = `Повторно отправлено событий за сутки: ${done.queued}; адрес включён.`;
    await loadEndpoints();
  } catch (error) {
    $("endpoint-status").textContent = "Не отправлено: " + error.message;
  }
}

async function loadDeliveries(endpoint) {
  $("deliveries").hidden = false;
  $("deliveries-title").textContent = "Журнал доставок: " + endpoint.url;
  const rows = $("delivery-rows");
  try {
    const { deliveries } = await api("GET", `/v1/endpoints/${encodeURIComponent(endpoint.endpoint_id)}/deliveries`);
    rows.replaceChildren();
    if (!deliveries.length) rows.append(emptyRow(7, "Доставок пока не было."));
    for (const entry of deliveries) {
      const row = el("tr");
      const answer = entry.status_code === null ? entry.error || "нет ответа" : String(entry.status_code);
      row.append(el("td", new Date(entry.at).toLocaleString("ru-RU")));
      row.append(el("td", `${EVENT_TYPES[entry.event_type] || entry.event_type} · ${entry.event_id}`));
      row.append(el("td", entry.attempt), el("td", answer), el("td", entry.latency_ms));
      row.append(el("td", OUTCOMES[entry.outcome] || entry.outcome));
      const replay = el("button", "Повторить", { type: "button", "aria-label": "Повторить " + entry.event_id });
      replay.addEventListener("click", () => replayEvent(entry.event_id));
      const cell = el("td");
      cell.append(replay);
      row.append(cell);
      rows.append(row);
    }
  } catch (error) {
    $("delivery-status").textContent = error.message;
  }
}

async function replayEvent(eventId) {
  try {
    const done = await api("POST", `/v1/events/${encodeURIComponent(eventId)}/replay`);
    $("delivery-status").textContent = `Событие ${eventId} отправлено ещё раз (адресов: ${done.queued.length}).`;
  } catch (error) {
    $("delivery-status").textContent = "Не отправлено: " + error.message;
  }
}

function eventTypeBoxes() {
  for (const [type, label] of Object.entries(EVENT_TYPES)) {
    const box = el("input", null, { type: "checkbox", name: "event_types", value: type, checked: "" });
    const item = el("label");
    item.append(box, " " + label + " ", el("code", type));
    $("endpoint-types").append(item);
  }
}

// -- Пропущенные ------------------------------------------------------------------------------------------------------
// The open callback tasks (operator: their own, admin: all), oldest first, with the SLA clock; refreshed by itself.
let missedTimer = null;

function startMissedRefresh() {
  stopMissedRefresh();
  loadMissed();
  missedTimer = setInterval(() => loadMissed().catch(() => {}), REFRESH_MS);
}

function stopMissedRefresh() {
  if (missedTimer) clearInterval(missedTimer);
  missedTimer = null;
}

function minutesText(minutes) {
  const days = Math.floor(minutes / 1440);
  const hours = Math.floor((minutes % 1440) / 60);
  if (days) return `${days} дн ${hours} ч`;
  return hours ? `${hours} ч ${minutes % 60} мин` : `${minutes} мин`;
}

// "осталось 12 мин" before the due time, "просрочено на 5 мин" after it.
function slaClock(task) {
  const left = Math.round((new Date(task.due_at) - new Date()) / 60000);
  return left >= 0 ? `осталось ${minutesText(left)}` : `просрочено на ${minutesText(-left)}`;
}

async function loadMissed() {
  const rows = $("missed-rows");
  let tasks;
  try {
    ({ tasks } = await api("GET", "/v1/callbacks?state=open"));
  } catch (error) {
    $("missed-status").textContent = error.message;
    return;
  }
  const method = me.employee ? me.employee.call_method : "disabled";
  rows.replaceChildren();
  if (!tasks.length) rows.append(emptyRow(5, "Пропущенных нет: всем перезвонили."));
  for (const task of tasks) {
    const row = el("tr", null, { "data-task": task.task_id });
    const client = el("td");
    const open = el("button", "+" + task.client_phone, { type: "button", "aria-label": "Карточка +" + task.client_phone });
    open.addEventListener("click", () => {
      show("clients");
      openCard(task.client_id);
    });
    client.append(open);
    if (task.message) client.append(el("div", "Клиенту отправлено: " + task.message, { class: "hint" }));
    const missed = `с ${new Date(task.opened_at).toLocaleString("ru-RU")} · звонков: ${task.missed_calls}`;
    const due = el("td", slaClock(task), { class: task.overdue ? "overdue" : "" });
    row.append(client, el("td", missed), due, el("td", task.assignee || "—"));
    const buttons = el("td", null, { class: "row-buttons" });
    const icon = phoneIcon(method, task.client_id, task.client_phone, $("missed-status"));
    if (icon) buttons.append(icon);
    const close = el("button", "Закрыть", { type: "button", "aria-label": "Закрыть задачу +" + task.client_phone });
    close.addEventListener("click", () => closeTask(task));
    buttons.append(close);
    row.append(buttons);
    rows.append(row);
  }
}

async function closeTask(task) {
  const reason = (prompt("Почему задача закрывается без звонка? (например: клиент написал в чат)") || "").trim();
  if (!reason) return;
  try {
    await api("POST", `/v1/callbacks/${encodeURIComponent(task.task_id)}/close`, { reason });
    $("missed-status").textContent = `Задача по +${task.client_phone} закрыта.`;
  } catch (error) {
    $("missed-status").textContent = "Не закрыта: " + error.message;
  }
  await loadMissed();
}

// -- Статистика -------------------------------------------------------------------------------------------------------
const WEEKDAYS = ["Пн", "Вт", "Ср", "Чт", "Пт", "Сб", "Вс"];

function isoDay(date) {
  return `${date.getFullYear()}-${String(date.getMonth() + 1).padStart(2, "0")}-${String(date.getDate()).padStart(2, "0")}`;
}

function showStatsPage() {
  if (!$("stats-to").value) {
    const today = new Date();
    $("stats-to").value = isoDay(today);
    $("stats-from").value = isoDay(new Date(today.getFullYear(), today.getMonth(), today.getDate() - 29));
  }
  loadStats();
}

function statsQuery() {
  return `/v1/stats?from=${encodeURIComponent($("stats-from").value)}&to=${encodeURIComponent($("stats-to").value)}`;
}

const percent = (share) => (share === null || share === undefined ? "—" : `${Math.round(share * 100)} %`);
const talkTime = (seconds) => minutesText(Math.round(seconds / 60));
const median = (minutes) => (minutes === null ? "—" : `≤ ${minutesText(minutes)}`);
const STATS_COLUMNS = [
  ["calls_in", String],
  ["calls_out", String],
  ["answered", String],
  ["missed", String],
  ["talk_seconds", talkTime],
  ["service_level", percent],
  ["median_callback_minutes", median],
  ["called_back_within_sla_share", percent],
  ["still_open", String],
];

function statsRow(label, now, was) {
  const row = el("tr");
  row.append(el("th", label, { scope: "row" }));
  for (const [field, format] of STATS_COLUMNS) {
    const cell = el("td", format(now[field]));
    if (was) cell.append(" ", el("span", `(${format(was[field])})`, { class: "was" }));
    row.append(cell);
  }
  return row;
}

async function loadStats(event) {
  if (event) event.preventDefault();
  const status = $("stats-status");
  let report;
  try {
    report = await api("GET", statsQuery());
  } catch (error) {
    status.textContent = error.message;
    return;
  }
  status.textContent = `${report.from} — ${report.to} (${report.time_zone}); ранее: ${report.previous.from} — ${report.previous.to}`;
  const before = Object.fromEntries(report.previous.employees.map((e) => [e.employee, e]));
  const rows = report.employees.map((e) =>
    statsRow(e.name ? `${e.name} (${e.employee})` : e.employee === "-" ? "без сотрудника" : e.employee, e, before[e.employee]),
  );
  if (report.total) rows.push(statsRow("Всего", report.total, report.previous.total));
  $("stats-rows").replaceChildren(...(rows.length ? rows : [emptyRow(10, "За этот период звонков не было.")]));
  renderHeatmap(report.heatmap);
}

function renderHeatmap(grid) {
  $("heatmap-block").hidden = !grid;
  if (!grid) return; // an operator sees their own row only
  const top = Math.max(1, ...grid.flat());
  const head = el("tr");
  head.append(el("th", ""));
  for (let hour = 0; hour < 24; hour++) head.append(el("th", String(hour)));
  const rows = grid.map((hours, day) => {
    const row = el("tr");
    row.append(el("th", WEEKDAYS[day], { scope: "row" }));
    for (const count of hours) {
      const level = count ? Math.min(5, 1 + Math.floor((count / top) * 4.999)) : 0;
      row.append(el("td", count || "", { class: "heat" + level, title: String(count) }));
    }
    return row;
  });
  $("heatmap").replaceChildren(head, ...rows);
}

async function downloadStatsCsv() {
  const status = $("stats-status");
  try {
    const answer = await fetch(API + statsQuery() + "&format=csv", {
      headers: { Authorization: "Bearer " + sessionStorage.getItem(TOKEN_KEY) },
    });
    if (!answer.ok) throw new Error(russianError(await answer.json().catch(() => ({})), answer.status));
    const link = el("a", null, {
      href: URL.createObjectURL(await answer.blob()),
      download: `statistika-${$("stats-from").value}-${$("stats-to").value}.csv`,
    });
    document.body.append(link);
    link.click();
    link.remove();
  } catch (error) {
    status.textContent = "CSV не скачан: " + error.message;
  }
}

// -- wiring -----------------------------------------------------------------------------------------------------------
document.addEventListener("DOMContentLoaded", () => {
  $("signin-form").addEventListener("submit", (event) => {
    event.preventDefault();
    signIn($("token").value.trim());
    $("token").value = "";
  });
  $("signout").addEventListener("click", () => {
    sessionStorage.removeItem(TOKEN_KEY);
    location.reload();
  });
  for (const button of document.querySelectorAll("#nav button")) {
    button.addEventListener("click", () => show(button.dataset.page));
  }
  $("telephony-form").addEventListener("submit", saveSettings);
  $("check").addEventListener("click", checkConnection);
  $("copy-webhook").addEventListener("click", () => copy(knownWebhookUrl, $("webhook-status")));
  $("show-webhook").addEventListener("click", toggleWebhookUrl);
  $("new-webhook-token").addEventListener("click", issueWebhookToken);
  $("employee-form").addEventListener("submit", saveEmployee);
  for (const radio of document.querySelectorAll("input[name=call_method]")) radio.addEventListener("change", showShortNumber);
  $("issue-operator-token").addEventListener("click", issueOperatorToken);
  $("copy-token").addEventListener("click", () => copy($("new-token-value").value, $("employee-status")));
  $("search-form").addEventListener("submit", search);
  eventTypeBoxes();
  $("endpoint-form").addEventListener("submit", addEndpoint);
  $("copy-endpoint-secret").addEventListener("click", () => copy($("endpoint-secret-value").value, $("endpoint-status")));
  $("stats-form").addEventListener("submit", loadStats);
  $("stats-csv").addEventListener("click", downloadStatsCsv);
  $("player").addEventListener("error", () => (playerRecording = null)); // a presigned URL expired: ask again
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (token) signIn(token);
});
