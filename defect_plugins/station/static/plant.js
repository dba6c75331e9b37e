// defect-station plant page: GET /api/plant with the filters (defect_plugins/station/plant/app.py); read-only.
"use strict";

const $ = (id) => document.getElementById(id);
let me = null;

async function api(path, options = {}) {
  const headers = { ...(options.headers || {}) };
  if (options.method && options.method !== "GET") {
    headers["X-Requested-With"] = "defect-station";
    if (me && me.csrf_token) headers["X-CSRF-Token"] = me.csrf_token;
  }
  const response = await fetch(path, { ...options, headers, credentials: "same-origin" });
  const text = await response.text();
  let data = null;
  try { data = text ? JSON.parse(text) : {}; } catch (error) { data = null; }
  if (response.status === 401 && data && data.reason === "login") window.location.assign("/login");
  if (!response.ok) throw new Error((data && data.error) || `HTTP ${response.status}`);
  return data;
}

function cell(row, text, className) {
  const td = document.createElement("td");
  td.textContent = text === null || text === undefined ? "" : String(text);
  if (className) td.className = className;
  row.append(td);
  return td;
}

const percent = (value) => (value === null || value === undefined ? "–" : `${(100 * value).toFixed(1)} %`);

function query() {
  const params = new URLSearchParams();
  for (const [key, id] of [["line", "f-line"], ["from", "f-from"], ["to", "f-to"], ["grade", "f-grade"]]) {
    if ($(id).value) params.set(key, $(id).value);
  }
  return params.toString();
}

function fillSelect(select, values) {
  const chosen = select.value;
  select.replaceChildren(new Option("all", ""));
  for (const value of values) select.append(new Option(value, value));
  select.value = values.includes(chosen) ? chosen : "";
}

function showLines(lines) {
  const body = $("lines").querySelector("tbody");
  body.replaceChildren();
  for (const line of lines) {
    const row = document.createElement("tr");
    cell(row, line.line);
    cell(row, line.inspected, "number");
    cell(row, line.throughput_per_h, "number");
    cell(row, line.last_hour, "number");
    cell(row, percent(line.reject_rate), "number");
    cell(row, line.errors, "number");
    cell(row, `${line.overrides} of ${line.reviewed_rejects} reviewed`, "number");
    cell(row, percent(line.false_reject_estimate), "number");
    cell(row, line.stations.map((s) => `${s.station || "?"}: ` +
      s.models.map((m) => `${m.name} ${m.version || ""}`.trim()).join(", ")).join(" · "));
    cell(row, line.drift || "not watched", line.drift ? `drift-${line.drift}` : "muted");
    body.append(row);
  }
}

function showRows(rows) {
  const body = $("rows").querySelector("tbody");
  body.replaceChildren();
  for (const r of rows) {
    const row = document.createElement("tr");
    for (const [value, className] of [[r.id, "number"], [r.created_at], [r.line], [r.station], [r.part_id],
      [r.lot], [r.verdict, `verdict-${r.verdict}`], [r.grade], [r.decision], [r.operator]]) {
      cell(row, value, className);
    }
    body.append(row);
  }
}

async function load() {
  try {
    const data = await api(`/api/plant?${query()}`);
    $("database").textContent = data.database;
    fillSelect($("f-line"), data.known_lines);
    fillSelect($("f-grade"), data.grades);
    showLines(data.lines);
    showRows(data.rows);
    $("csv").href = `/api/plant.csv?${query()}`;
    $("message").hidden = true;
  } catch (error) {
    $("message").textContent = error.message;
    $("message").hidden = false;
  }
}

async function loadMe() {
  me = await api("/api/me");
  $("no-login").hidden = me.login !== false;
  const box = $("user");
  box.replaceChildren();
  if (me.user) {
    box.append(`${me.user} (${me.role}) `);
    const out = document.createElement("button");
    out.textContent = "Log out";
    out.addEventListener("click", async () => {
      await api("/api/logout", { method: "POST", headers: { "Content-Type": "application/json" }, body: "{}" });
      window.location.assign("/login");
    });
    box.append(out);
  }
}

document.addEventListener("DOMContentLoaded", async () => {
  $("filters").addEventListener("submit", (event) => { event.preventDefault(); load(); });
  try { await loadMe(); } catch (error) { /* the figures say why */ }
  await load();
  setInterval(load, 10000);
});
