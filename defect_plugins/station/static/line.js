// defect-station, the operator's line page: the newest part's verdict, the last parts, the shift's counters.
// Polls GET /api/line once a second (defect_plugins/station/app.py); no libraries.
"use strict";

const $ = (id) => document.getElementById(id);
const state = { me: null, shown: null, newest: null, follow: true, token: null, busy: false };
const POLL_MS = 1000;

async function api(path, options = {}, retried = false) {
  const headers = { ...(options.headers || {}) };
  const write = options.method && options.method !== "GET";
  // the same protections as the engineer's page (guard.py): the request header and the session's CSRF token
  if (write) headers["X-Requested-With"] = "defect-station";
  if (write && state.me && state.me.csrf_token) headers["X-CSRF-Token"] = state.me.csrf_token;
  let response;
  try {
    response = await fetch(path, { ...options, headers, credentials: "same-origin" });
  } catch (error) {
    throw new Error(`the station cannot be reached (${error.message})`);
  }
  const text = await response.text();
  let data = null;
  try { data = text ? JSON.parse(text) : {}; } catch (error) { data = null; }
  if (response.status === 401 && data && data.reason === "login") window.location.assign("/login");
  if (response.status === 403 && data && data.reason === "csrf" && !retried) {
    await loadMe();
    return api(path, options, true);
  }
  if (!response.ok) throw new Error((data && data.error) || `HTTP ${response.status}: ${text.slice(0, 200)}`);
  return data;
}

function showMessage(text) {
  $("message").textContent = text;
  $("message").hidden = !text;
}

async function loadMe() {
  state.me = await api("/api/me");
  $("no-login").hidden = state.me.login !== false;
  const box = $("user-box");
  box.textContent = "";
  if (state.me.user) {
    box.append(`${state.me.user} (${state.me.role})`);
    const out = document.createElement("button");
    out.type = "button";
    out.textContent = "Log out";
    out.addEventListener("click", async () => {
      await api("/api/logout", { method: "POST", headers: { "Content-Type": "application/json" }, body: "{}" });
      window.location.assign("/login");
    });
    box.append(" ", out);
  }
}

function verdictClass(verdict) {
  return { OK: "ok", NG: "ng", ERROR: "error" }[verdict] || "unknown";
}

function pct(value) {
  return value === null || value === undefined ? "–" : `${(100 * value).toFixed(1)} %`;
}

function render(line) {
  $("line-title").textContent = `Line ${line.line}`;
  $("models").textContent = line.models.map((m) => `${m.name} ${m.version || ""}`.trim()).join(" · ");
  const drift = line.drift ? line.drift.state : "";
  $("drift").textContent = drift ? `drift: ${drift}` : "drift: not watched";
  $("drift").className = `drift-state drift-${drift || "none"}`;
  const shift = line.shift;
  $("shift-start").textContent = `(since ${shift.start.replace("T", " ").slice(0, 16)})`;
  $("count-inspected").textContent = shift.inspected;
  $("count-ok").textContent = shift.ok;
  $("count-ng").textContent = shift.ng;
  $("count-errors").textContent = shift.errors;
  $("reject-rate").textContent = pct(shift.reject_rate);
  const links = Object.entries(line.links).map(([name, link]) => `${name}: ${link}`);
  $("links").textContent = links.join(" · ") || "no line links (upload and watched folder only)";
  // a model switched in that failed on a part was rolled back by the station: say so until it restarts
  const notices = (line.model_notices || []).slice(-1).map((n) => `Model rolled back (${n.at}): ${n.message}`);
  showMessage([line.last_store_error ? `Not recorded: ${line.last_store_error}` : "", ...notices]
    .filter(Boolean).join(" · "));
  const strip = $("strip");
  strip.textContent = "";
  for (const part of line.recent) {
    const item = document.createElement("li");
    const button = document.createElement("button");
    button.type = "button";
    button.className = verdictClass(part.verdict) + (state.shown === part.inspection_id ? " shown" : "");
    button.dataset.id = String(part.inspection_id);
    button.textContent = `${part.part_id || part.source} · ${part.verdict || "?"}`;
    button.title = `inspection ${part.inspection_id}, ${part.grade}, ${part.created_at}`;
    button.addEventListener("click", () => { state.follow = part === line.recent[0]; showPart(part.inspection_id); });
    item.append(button);
    strip.append(item);
  }
  const newest = line.recent.length ? line.recent[0].inspection_id : null;
  if (newest !== null && newest !== state.newest) {
    state.newest = newest;
    if (state.follow) showPart(newest);
  }
}

async function showPart(inspectionId) {
  const part = await api(`/api/part/${inspectionId}`);
  state.shown = inspectionId;
  state.token = part.token || null;
  for (const button of document.querySelectorAll("#strip button")) {
    button.classList.toggle("shown", Number(button.dataset.id) === inspectionId);
  }
  const verdict = part.verdict || "?";
  $("verdict").className = `verdict ${verdictClass(verdict)}`;
  $("verdict-word").textContent = verdict;
  $("verdict-grade").textContent = part.grade || "";
  $("part-id").textContent = part.part_id || "–";
  $("part-lot").textContent = part.lot || "–";
  $("part-inspection").textContent = String(part.inspection_id);
  $("part-time").textContent = (part.created_at || "").replace("T", " ").slice(0, 23);
  $("part-class").textContent = part.class || "–";
  $("part-error").textContent = part.error || "–";
  const image = part.image_url;
  $("part-image").hidden = !image;
  if (image) $("part-image").src = image;
  $("part-caption").textContent = part.image_caption || "";
  const canDecide = Boolean(state.token);
  $("accept-button").disabled = !canDecide;
  $("reject-button").disabled = !canDecide;
  $("decided").textContent = part.decision ? `${part.decision} by ${part.operator}` : "";
}

async function decide(decision) {
  if (!state.shown || !state.token || state.busy) return;
  state.busy = true;
  try {
    const body = { inspection_id: state.shown, token: state.token, decision };
    if (state.me && state.me.login === false) body.operator = window.prompt("Operator name") || "";
    const row = await api("/api/decision", { method: "POST", headers: { "Content-Type": "application/json" },
                                            body: JSON.stringify(body) });
    $("decided").textContent = `${row.decision} by ${row.operator}`;
  } catch (error) {
    showMessage(error.message);
  } finally {
    state.busy = false;
  }
}

async function poll() {
  try {
    render(await api("/api/line"));
  } catch (error) {
    showMessage(error.message);
  }
  window.setTimeout(poll, POLL_MS);
}

$("accept-button").addEventListener("click", () => decide("accept"));
$("reject-button").addEventListener("click", () => decide("reject"));
loadMe().then(poll, (error) => showMessage(error.message));
