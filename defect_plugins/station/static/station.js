// defect-station page: talks to the JSON API of defect_plugins/station/app.py; no libraries.
"use strict";

// me: GET /api/me (login on or off, user, role, the session's CSRF token)
const state = { status: null, grades: [], current: null, thresholdSeq: {}, me: null };
const $ = (id) => document.getElementById(id);

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else node.setAttribute(key, value);
  }
  for (const child of children) node.append(child);
  return node;
}

async function api(path, options = {}, retried = false) {
  let response;
  // every write carries the station's request header: the server refuses writes without it
  // (a page of another site cannot send it), and the session's CSRF token; see defect_plugins/station/guard.py
  const headers = { ...(options.headers || {}) };
  const write = options.method && options.method !== "GET";
  if (write) headers["X-Requested-With"] = "defect-station";
  if (write && state.me && state.me.csrf_token) headers["X-CSRF-Token"] = state.me.csrf_token;
  try {
    response = await fetch(path, { ...options, headers, credentials: "same-origin" });
  } catch (error) {
    throw new Error(`the station cannot be reached (${error.message})`);
  }
  const text = await response.text();
  let data = null;
  try { data = text ? JSON.parse(text) : {}; } catch (error) { data = null; }
  if (response.status === 401 && data && data.reason === "login") {
    window.location.assign("/login");  // the session ended (shift over, logged out elsewhere, user disabled)
  }
  if (response.status === 403 && data && data.reason === "csrf" && !retried) {
    // the station restarted and derives new CSRF tokens: read this session's again, once
    await loadMe();
    return api(path, options, true);
  }
  if (!response.ok) {
    throw new Error((data && data.error) || `HTTP ${response.status}: ${text.slice(0, 200)}`);
  }
  return data;
}

function showMessage(text, kind = "error") {
  const box = $("message");
  box.textContent = text;
  box.className = kind === "info" ? "message info" : "message";
  box.hidden = false;
}

function clearMessage() { $("message").hidden = true; }

function fmt(value, digits = 3) {
  if (value === null || value === undefined) return "–";
  if (typeof value === "number") return Number.isInteger(value) ? String(value) : value.toFixed(digits);
  return String(value);
}

function setGrade(node, grade) {
  // colour by severity: the rule file's grades, least severe first, spread over four colours
  const index = state.grades.indexOf(grade);
  for (const name of [...node.classList]) if (name.startsWith("sev-")) node.classList.remove(name);
  node.classList.add("grade");
  if (index >= 0 && state.grades.length > 1) node.classList.add(`sev-${Math.round(index * 3 / (state.grades.length - 1))}`);
  node.textContent = grade || "–";
  node.dataset.grade = grade || "";
}

// ------------------------------------------------------------------ who is logged in

async function loadMe() {
  const me = await api("/api/me");
  state.me = me;
  const operator = $("operator");
  if (me.login) {
    $("user-box").hidden = false;
    $("user-name").textContent = me.user;
    $("user-role").textContent = `(${me.role})`;
    operator.value = me.user;  // decisions are signed by the logged-in user; the server checks it
    operator.readOnly = true;
    $("operator-note").textContent = "(logged in)";
  } else {
    $("no-login-banner").hidden = false;
    operator.readOnly = false;
    operator.value = operator.value || localStorage.getItem("defect-station-operator") || "";
  }
  return me;
}

function mayMoveThresholds() {
  return !(state.me && state.me.login && state.me.role !== "engineer");
}

async function logOut() {
  try {
    await api("/api/logout", { method: "POST", body: "{}", headers: { "Content-Type": "application/json" } });
  } finally {
    window.location.assign("/login");
  }
}

// ------------------------------------------------------------------ status line

// the drift watch (defect_plugins/station/drift_watch.py): each model's state, or why it is not watched
function driftText(drift) {
  if (!drift) return "–";
  return Object.entries(drift.models).map(([name, model]) =>
    `${name} ${model.state}${model.tripped && model.tripped.length ? ` (${model.tripped.join(", ")})` : ""}`)
    .join(", ") || "no models";
}

async function loadStatus() {
  try {
    const status = await api("/api/status");
    state.status = status;
    state.grades = status.rules.grades;
    const parts = status.models.map((m) =>
      `${m.name} (${m.family}, ${m.bundle ? `bundle of ${m.bundle.created}, ` : ""}` +
      `${m.weights} weights @ ${m.precision}, ` +
      `${m.latency_ms === null ? "not run yet" : m.latency_ms.toFixed(1) + " ms median"})`);
    $("status-line").textContent = `models: ${parts.join(" · ")} | rules: ${status.rules.source.split("/").pop()}` +
      ` | db: ${status.database.split("/").pop()} | drift: ${driftText(status.drift)}` +
      (status.shadows.length ? ` | shadow: ${status.shadows.map((m) => `${m.name} (slot ${m.slot})`).join(", ")}` : "");
    const notice = status.model_notices[status.model_notices.length - 1];
    $("model-notice").textContent = notice ? `Model rolled back (${notice.at}): ${notice.message}` : "";
    $("model-notice").hidden = !notice;
    $("tab-versions").hidden = !mayMoveThresholds();  // the model routes are an engineer's
    $("watch-folder").textContent = status.watch ? `(${status.watch})` : "(no --watch folder)";
    $("watch-button").disabled = !status.watch;
    fillSelect($("regrade-grade"), state.grades, false);
    fillSelect($("filter-grade"), state.grades, true);
  } catch (error) {
    $("status-line").textContent = `status unavailable: ${error.message}`;
  }
}

function fillSelect(select, values, keepAny) {
  const chosen = select.value;
  select.replaceChildren(...(keepAny ? [el("option", { value: "", text: "any" })] : []),
    ...values.map((v) => el("option", { value: v, text: v })));
  if ([...select.options].some((o) => o.value === chosen)) select.value = chosen;
}

// ------------------------------------------------------------------ inspecting

async function inspectUpload() {
  clearMessage();
  const file = $("file-input").files[0];
  if (!file) { showMessage("Choose an image file first."); return; }
  const limit = state.status ? state.status.max_upload_bytes : null;
  if (limit && file.size > limit) {
    showMessage(`${file.name}: ${(file.size / 1e6).toFixed(1)} MB is above the station's limit of ` +
      `${(limit / 1e6).toFixed(0)} MB (--max-upload-mb).`);
    return;
  }
  await run($("upload-button"), () => api(`/api/inspect?name=${encodeURIComponent(file.name)}`,
    { method: "POST", body: file, headers: { "Content-Type": "application/octet-stream" } }));
}

async function inspectWatch() {
  clearMessage();
  await run($("watch-button"), () => api("/api/watch", {
    method: "POST", body: "{}", headers: { "Content-Type": "application/json" } }));
}

async function run(button, request) {
  button.disabled = true;
  document.body.dataset.busy = "1";
  try {
    render(await request());
    loadStatus();
  } catch (error) {
    showMessage(error.message);
  } finally {
    button.disabled = false;
    delete document.body.dataset.busy;
  }
}

function render(payload) {
  state.current = payload;
  $("result").hidden = false;
  $("inspection-id").textContent = `#${payload.inspection_id}`;
  $("result").dataset.inspection = payload.inspection_id;
  $("source").textContent = payload.source;
  $("size").textContent = `${payload.image.width} x ${payload.image.height} px`;
  $("class").textContent = payload.class;
  setGrade($("grade"), payload.grade);
  for (const name of ["original", "bilateral", "stretched", "otsu"]) $(`view-${name}`).src = payload.views[name];
  $("otsu-caption").textContent =
    `Otsu regions (threshold ${fmt(payload.views.otsu_threshold, 0)}, ${payload.views.defect_polarity} class)`;
  $("models").replaceChildren(...payload.models.map(card));
  $("comment").value = "";
  $("decision-status").textContent = "";
  for (const id of ["accept", "reject", "regrade"]) $(id).disabled = false;
}

function card(model) {
  const node = el("div", { class: "model-card", "data-index": model.index, "data-family": model.family });
  node.append(el("h3", {}, el("span", { text: `${model.name} · ${model.family}` }),
    el("span", { class: "muted", text: `${fmt(model.latency_ms, 1)} ms` })));
  if (model.status !== "ok") {
    const grade = el("span", { class: "grade model-grade" });
    setGrade(grade, model.grade);
    node.append(el("p", { class: "error-card", text: `failed: ${model.error}` }), grade,
      el("ul", { class: "reasons" }, ...model.reasons.map((r) => el("li", { text: r }))));
    return node;
  }
  const facts = el("dl", { class: "facts" });
  const fact = (label, value, cls) => facts.append(el("dt", { text: label }),
    el("dd", cls ? { class: cls, text: value } : { text: value }));
  fact("decision", model.decision, "decision");
  if (model.family === "classifier") {
    fact("class", model.class, "class");
    fact("confidence", fmt(model.confidence), "confidence");
    fact("top 3", model.top.map(([n, p]) => `${n} ${p.toFixed(2)}`).join(", "));
  }
  if (model.family === "segmentor") {
    fact("classes", Object.entries(model.class_grades).map(([n, g]) => `${n}: ${g}`).join(", ") || "none");
  }
  if (model.family === "anomaly") {
    fact("score", fmt(model.score), "score");
    const slider = el("input", { type: "range", class: "threshold", min: "0", max: "1", step: "0.01",
      value: String(model.threshold), "aria-label": `threshold of ${model.name}` });
    if (!mayMoveThresholds()) {  // the server refuses it too: thresholds are an engineer's
      slider.disabled = true;
      slider.title = "only an engineer may move thresholds";
    }
    const shown = el("span", { class: "threshold-value", text: fmt(model.threshold, 2) });
    slider.addEventListener("input", () => { shown.textContent = Number(slider.value).toFixed(2); });
    slider.addEventListener("change", () => rethreshold(model.index, Number(slider.value)));
    facts.append(el("div", { class: "threshold-row" }, el("span", { text: "threshold" }), slider, shown,
      el("span", { class: "muted", text: `(model's ${fmt(model.threshold_default, 2)})` })));
  }
  const side = state.status && state.status.rules.k_reference_side;
  if (side && model.totals.area > 0) fact(`K at ${side} px`, fmt(model.k_rule), "k-rule");
  const grade = el("span", { class: "grade model-grade" });
  setGrade(grade, model.grade);
  facts.append(el("dt", { text: "grade" }), el("dd", {}, grade));
  facts.append(el("ul", { class: "reasons" }, ...model.reasons.map((r) => el("li", { text: r }))));
  node.append(el("div", { class: "body" },
    el("div", { class: "overlay" }, el("img", { src: model.overlay, alt: `${model.name} overlay` })), facts,
    el("div", { class: "geometry-wrap" }, geometry(model))));
  return node;
}

function geometry(model) {
  const head = el("tr", {}, ...["region", "area (px)", "perimeter (px)", "area ratio", "K (1/px)", "centroid (x, y)"]
    .map((h) => el("th", { text: h })));
  const rows = model.regions.map((r, i) => el("tr", {},
    el("td", { text: `${i + 1} ${r.class}` }), el("td", { text: fmt(r.area, 0) }), el("td", { text: fmt(r.perimeter, 1) }),
    el("td", { text: fmt(r.area_ratio, 4) }), el("td", { text: fmt(r.k, 3) }),
    el("td", { text: `${r.centroid[0].toFixed(1)}, ${r.centroid[1].toFixed(1)}` })));
  const t = model.totals;
  const more = model.num_regions > model.regions.length ? ` (${model.regions.length} of ${model.num_regions} listed)` : "";
  const total = el("tr", { class: "totals" }, el("td", { text: `image: ${t.num_regions} regions${more}` }),
    el("td", { text: fmt(t.area, 0) }), el("td", { text: fmt(t.perimeter, 1) }), el("td", { text: fmt(t.area_ratio, 4) }),
    el("td", { text: fmt(t.k, 3), title: `K as the rules compare it: ${fmt(model.k_rule, 3)}` }), el("td", { text: "" }));
  return el("table", { class: "geometry" }, el("thead", {}, head), el("tbody", {}, ...rows, total));
}

async function rethreshold(index, value) {
  const current = state.current;
  const seq = (state.thresholdSeq[index] || 0) + 1;
  state.thresholdSeq[index] = seq;
  try {
    const answer = await api("/api/threshold", { method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ inspection_id: current.inspection_id, token: current.token, model: index,
        threshold: value }) });
    if (state.thresholdSeq[index] !== seq || state.current !== current) return;  // a newer request answers
    const position = current.models.findIndex((m) => m.index === index);
    current.models[position] = answer.model;
    current.grade = answer.grade;
    setGrade($("grade"), answer.grade);
    const old = document.querySelector(`.model-card[data-index="${index}"]`);
    old.replaceWith(card(answer.model));
  } catch (error) {
    showMessage(error.message);
  }
}

async function decide(decision) {
  const current = state.current;
  if (!current) return;
  const operator = $("operator").value.trim();
  if (!operator) { showMessage("Enter your name as operator first: every decision is signed."); $("operator").focus(); return; }
  if (!(state.me && state.me.login)) localStorage.setItem("defect-station-operator", operator);
  const thresholds = {};
  for (const model of current.models) if (model.status === "ok") thresholds[model.name] = model.threshold;
  const body = { inspection_id: current.inspection_id, token: current.token, operator, decision,
    comment: $("comment").value, thresholds };
  if (decision === "regrade") body.grade = $("regrade-grade").value;
  for (const id of ["accept", "reject", "regrade"]) $(id).disabled = true;
  try {
    const row = await api("/api/decision", { method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body) });
    $("decision-status").textContent = `Stored: ${row.decision} · final grade ${row.final_grade} · ` +
      `by ${row.operator} · decision #${row.id} for inspection #${row.inspection_id} at ${row.decided_at}`;
    $("decision-status").dataset.decision = row.decision;
  } catch (error) {
    showMessage(error.message);
  } finally {
    for (const id of ["accept", "reject", "regrade"]) $(id).disabled = false;
  }
}

// ------------------------------------------------------------------ history

function historyQuery() {
  const query = new URLSearchParams();
  const pairs = { grade: "filter-grade", class: "filter-class", decision: "filter-decision", from: "filter-from",
    to: "filter-to" };
  for (const [key, id] of Object.entries(pairs)) if ($(id).value) query.set(key, $(id).value);
  return query.toString();
}

async function loadHistory() {
  const query = historyQuery();
  $("csv-link").href = "/api/history.csv" + (query ? `?${query}` : "");
  try {
    const data = await api("/api/history" + (query ? `?${query}` : ""));
    fillSelect($("filter-class"), data.classes, true);
    $("history-table").tBodies[0].replaceChildren(...data.rows.map((r) => el("tr", { "data-id": r.id },
      el("td", { text: r.id }), el("td", { text: r.created_at.replace("T", " ").slice(0, 19) }),
      el("td", { text: r.source }), el("td", { text: r.class_name }), el("td", { text: fmt(r.score) }),
      el("td", { text: r.grade }), el("td", { class: "decisions" }, ...r.decisions.map(decisionItem)),
      el("td", { text: r.current_grade }), el("td", { class: "hash", text: r.image_sha256.slice(0, 12) }))));
  } catch (error) {
    showMessage(error.message);
  }
}

function decisionItem(d) {
  // every decision in order, the newest last: who, what, when, and the comment
  const what = d.decision === "regrade" ? `regrade → ${d.final_grade}` : d.decision;
  const text = `${what} · ${d.operator || "?"} · ${d.decided_at.replace("T", " ").slice(0, 16)}` +
    (d.comment ? ` · ${d.comment}` : "");
  return el("div", { class: "decision-item", text });
}

function showTab(name) {
  for (const tab of document.querySelectorAll(".tab")) tab.classList.toggle("active", tab.dataset.tab === name);
  $("inspect").hidden = name !== "inspect";
  $("history").hidden = name !== "history";
  $("versions").hidden = name !== "versions";
  if (name === "history") loadHistory();
  if (name === "versions") loadVersions();
}

// ------------------------------------------------------------------ model versions (engineers)

const modelName = (m) => (m ? `${m.name} ${m.version}` : "–");

function versionsMessage(text) {
  $("versions-message").textContent = text;
  $("versions-message").hidden = !text;
}

async function switchModel(action, slot, bundle) {
  try {
    await api(`/api/models/${action}`, { method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify(bundle ? { slot, bundle } : { slot }) });
    versionsMessage("");
    await loadVersions();
    await loadStatus();
  } catch (error) {
    versionsMessage(error.message);
  }
}

function reportText(report) {
  if (!report.count) return "no inspection with a shadow yet";
  return `${report.count} parts · agreement ${pct(report.agreement)} · ${report.differ.length} differ · ` +
    `false reject vs operators: active ${pct(report.false_reject.active)}, shadow ${pct(report.false_reject.shadow)}`;
}

function pct(value) {
  return value === null || value === undefined ? "–" : `${(100 * value).toFixed(1)} %`;
}

async function loadVersions() {
  try {
    const data = await api("/api/models");
    const rows = await Promise.all(data.slots.map(async (slot) => {
      const choice = el("select", { "aria-label": `candidate for slot ${slot.slot}` },
        ...data.bundles.filter((b) => b.family === slot.family)
          .map((b) => el("option", { value: b.name, text: `${b.name} ${b.version}${b.created ? " · " + b.created : ""}` })));
      const button = (text, handler) => {
        const node = el("button", { type: "button", text });
        node.addEventListener("click", handler);
        return node;
      };
      const report = await api(`/api/models/comparison?slot=${slot.slot}`).catch((error) => ({ error: error.message }));
      return el("tr", {}, el("td", { text: slot.slot }), el("td", { text: slot.family }),
        el("td", { text: modelName(slot.active) }), el("td", { text: modelName(slot.previous) }),
        el("td", { text: modelName(slot.shadow) }), el("td", {}, choice),
        el("td", {}, button("Shadow", () => switchModel("shadow", slot.slot, choice.value)),
          button("Stop shadow", () => switchModel("shadow/stop", slot.slot)),
          button("Activate shadow", () => switchModel("activate", slot.slot)),
          button("Roll back", () => switchModel("rollback", slot.slot))),
        el("td", { text: report.error || reportText(report) }));
    }));
    $("slots-table").tBodies[0].replaceChildren(...rows);
    versionsMessage(data.bundles_folder ? "" : "No --bundles folder: the station was started without candidates.");
  } catch (error) {
    versionsMessage(error.message);
  }
}

document.addEventListener("DOMContentLoaded", () => {
  $("upload-button").addEventListener("click", inspectUpload);
  $("watch-button").addEventListener("click", inspectWatch);
  $("accept").addEventListener("click", () => decide("accept"));
  $("reject").addEventListener("click", () => decide("reject"));
  $("regrade").addEventListener("click", () => decide("regrade"));
  for (const tab of document.querySelectorAll(".tab")) tab.addEventListener("click", () => showTab(tab.dataset.tab));
  $("history-filters").addEventListener("submit", (event) => { event.preventDefault(); loadHistory(); });
  $("logout-button").addEventListener("click", logOut);
  loadMe().catch((error) => showMessage(error.message)).finally(loadStatus);
});
