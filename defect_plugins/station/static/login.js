// defect-station login page: POST /api/login (defect_plugins/station/app.py), then the station's page.
"use strict";

const byId = (id) => document.getElementById(id);

function showLoginMessage(text) {
  const box = byId("login-message");
  box.textContent = text;
  box.hidden = false;
}

async function logIn(event) {
  event.preventDefault();
  const button = byId("login-button");
  button.disabled = true;
  try {
    // the station's request header: the server refuses writes without it (see guard.py)
    const response = await fetch("/api/login", {
      method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-Requested-With": "defect-station" },
      body: JSON.stringify({ name: byId("login-name").value, password: byId("login-password").value }) });
    let data = {};
    try { data = await response.json(); } catch (error) { data = {}; }
    if (response.ok) {
      window.location.replace("/");
      return;
    }
    byId("login-password").value = "";
    showLoginMessage(data.error || `HTTP ${response.status}`);
  } catch (error) {
    showLoginMessage(`the station cannot be reached (${error.message})`);
  } finally {
    button.disabled = false;
  }
}

document.addEventListener("DOMContentLoaded", async () => {
  byId("login-form").addEventListener("submit", logIn);
  // already logged in (a link from another site arrives without the SameSite=Strict cookie): go on
  try {
    const response = await fetch("/api/me", { credentials: "same-origin" });
    if (response.ok && (await response.json()).user) window.location.replace("/");
  } catch (error) { /* stay on the form */ }
});
