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
  auth_mode: "«Подпись запросов»",
  employee_id: "«ID»: латинские буквы, цифры, точка, дефис или подчёркивание",
  name: "«Имя»: не пустое",
  call_method: "«Способ совершения звонков»",
  short_number: "«Короткий номер»: от 2 до 8 цифр",
  phone: "«Телефон»",
  q: "«Телефон или имя»",
};
const REFRESH_MS = 3000;
const ROLES = { admin: "администратор", operator: "оператор", bot: "бот" };

const $ = (id) => document.getElementById(id);
let me = null;
// The full webhook URL made in this tab (a secret typed here, or a random token just issued): kept in memory only,
// shown on "Показать". The service cannot send it again (a token is stored as a hash, the PBX secret is write-only).
let knownWebhookUrl = null;
let webhookShown = false;
let cardTimer = null;
let callStarting = false; // a card call's request is on its way: the phone icons are disabled

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
  await openLinkedRecording();
}

function show(page) {
  if (!me) return; // nothing opens before sign-in
  for (const id of ["telephony", "employees", "clients"]) $(id).hidden = id !== page;
  for (const button of document.querySelectorAll("#nav button")) {
    button.setAttribute("aria-current", button.dataset.page === page ? "page" : "false");
  }
  if (page !== "clients") stopCardRefresh();
  if (page === "telephony") loadSettings();
  if (page === "employees") loadEmployees();
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
    if (method === "app") {
      item.append(el("a", "☎", { class: "phone-icon", href: "tel:+" + phone, "aria-label": "Позвонить +" + phone }));
    } else if (method === "api") {
      const button = el("button", "☎", { type: "button", class: "phone-icon", "aria-label": "Позвонить +" + phone });
      button.disabled = callStarting; // the card refreshes every few seconds: a new icon stays disabled too
      button.addEventListener("click", () => callByApi(client.id, phone));
      item.append(button);
    }
    list.append(item);
  }
}

function setCallStarting(starting) {
  callStarting = starting;
  for (const button of document.querySelectorAll("#card-phones button.phone-icon")) button.disabled = starting;
}

async function callByApi(clientId, phone) {
  if (callStarting) return; // one click, one call: a second click while the first starts does nothing
  setCallStarting(true);
  const status = $("call-status");
  status.textContent = "Звонок: " + STATES.starting + "…";
  try {
    const path = `/v1/clients/${encodeURIComponent(clientId)}/call`;
    const started = await api("POST", path, { phone }, { "Idempotency-Key": newIdempotencyKey() });
    status.textContent = "Звонок: " + STATES[started.status];
    followAttempt(started.attempt_id);
  } catch (error) {
    status.textContent = "Звонок не начат: " + error.message;
  } finally {
    setCallStarting(false);
  }
}

function followAttempt(attemptId) {
  const timer = setInterval(async () => {
    try {
      const attempt = await api("GET", "/v1/calls/" + encodeURIComponent(attemptId));
      if (attempt.status === "completed" || attempt.status === "failed") {
        clearInterval(timer);
        $("call-status").textContent = "Звонок: " + STATES[attempt.status];
      }
    } catch (error) {
      clearInterval(timer);
    }
  }, REFRESH_MS / 2);
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
  $("player").addEventListener("error", () => (playerRecording = null)); // a presigned URL expired: ask again
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (token) signIn(token);
});
