// devmesh dashboard: a little plain JavaScript, no framework and no build
// step. Pages are rendered by the server; this file only sends actions to
// the REST API (with the page's CSRF token), follows build logs, and
// refreshes a workspace's state. CSP forbids inline scripts, so every
// behaviour is bound here through data- attributes.
"use strict";

(function () {
  const meta = document.querySelector('meta[name="csrf-token"]');
  const csrf = meta ? meta.content : "";

  // api calls /api/v1 with the session cookie and the CSRF token, and
  // resolves to the decoded JSON (null for 204) or rejects with the API's
  // error message.
  async function api(method, url, body) {
    const opts = { method, credentials: "same-origin", headers: { "Accept": "application/json" } };
    if (method !== "GET") opts.headers["X-CSRF-Token"] = csrf;
    if (body !== undefined) {
      opts.headers["Content-Type"] = "application/json";
      opts.body = typeof body === "string" ? body : JSON.stringify(body);
    }
    const resp = await fetch(url, opts);
    const text = await resp.text();
    let data = null;
    try { data = text ? JSON.parse(text) : null; } catch (e) { /* not JSON */ }
    if (!resp.ok) {
      const err = new Error((data && data.message) || ("HTTP " + resp.status));
      err.status = resp.status;
      err.code = data && data.code;
      throw err;
    }
    return data;
  }

  function flash(msg, kind) {
    const el = document.getElementById("flash");
    if (!el) { alert(msg); return; }
    el.textContent = msg;
    el.className = kind || "error";
    el.hidden = false;
    el.focus && el.setAttribute("tabindex", "-1");
    el.scrollIntoView({ block: "nearest" });
  }

  function after(then) {
    if (!then) return;
    if (then === "reload") location.reload();
    else location.assign(then);
  }

  // Buttons with data-api="METHOD" data-url=... [data-body] [data-confirm]
  // [data-then="reload"|URL].
  document.addEventListener("click", async (ev) => {
    const btn = ev.target.closest("button[data-api], button[data-restart]");
    if (!btn) return;
    ev.preventDefault();
    const question = btn.dataset.confirm;
    if (question && !confirm(question)) return;
    btn.disabled = true;
    try {
      if (btn.hasAttribute("data-restart")) {
        await api("POST", btn.dataset.url, { transition: "stop" });
        sessionStorage.setItem("restart:" + btn.dataset.url, "1");
        location.reload();
        return;
      }
      await api(btn.dataset.api, btn.dataset.url, btn.dataset.body);
      after(btn.dataset.then || "reload");
    } catch (e) {
      flash(e.message);
      btn.disabled = false;
    }
  });

  // Forms handled by script: data-form="create-workspace" etc.
  const forms = {
    "create-workspace": async (f) => {
      const params = {};
      f.querySelectorAll("[data-param]").forEach((el) => {
        params[el.dataset.param] = el.hasAttribute("data-bool") ? String(el.checked) : el.value;
      });
      const name = f.elements.name.value.trim();
      await api("POST", "/api/v1/workspaces", { name, template: f.elements.template.value, parameters: params });
      location.assign("/@" + encodeURIComponent(f.dataset.owner) + "/" + encodeURIComponent(name));
    },
    "create-token": async (f) => {
      const out = await api("POST", "/api/v1/tokens", { name: f.elements.name.value.trim(), lifetime: f.elements.lifetime.value });
      const box = document.getElementById("token-secret");
      const input = document.getElementById("token-value");
      input.value = out.secret;
      box.hidden = false;
      input.focus();
      input.select();
      f.reset();
      flash("Created token " + out.token.name + ". Reload the page to see it in the list.", "ok");
    },
    "create-user": async (f) => {
      await api("POST", "/api/v1/users", { username: f.elements.username.value.trim(), password: f.elements.password.value, role: f.elements.role.value });
      location.reload();
    },
  };
  document.addEventListener("submit", async (ev) => {
    const f = ev.target;
    const handler = forms[f.dataset.form];
    if (!handler) return;
    ev.preventDefault();
    const btn = f.querySelector("button[type=submit]");
    if (btn) btn.disabled = true;
    try {
      await handler(f);
    } catch (e) {
      flash(e.message);
    } finally {
      if (btn) btn.disabled = false;
    }
  });

  const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

  // followBuildLog long-polls the build's log (the API answers when a line
  // arrives or the build ends, or after ~25 s) and appends the lines.
  async function followBuildLog(pre) {
    const status = document.getElementById("build-status");
    const base = pre.dataset.url;
    let afterID = Number(pre.dataset.after || 0);
    let delay = 1000;
    for (;;) {
      let page;
      try {
        page = await api("GET", base + "?after=" + afterID + "&follow=true");
        delay = 1000;
      } catch (e) {
        if (e.status === 404 && pre.dataset.transition === "delete") { location.assign("/"); return; }
        if (e.status === 401) { location.assign("/login?next=" + encodeURIComponent(location.pathname)); return; }
        await sleep(delay);
        delay = Math.min(delay * 2, 10000);
        continue;
      }
      const atBottom = pre.scrollHeight - pre.scrollTop - pre.clientHeight < 40;
      for (const line of page.logs || []) {
        pre.append(line.output + "\n");
        afterID = line.id;
      }
      if (atBottom) pre.scrollTop = pre.scrollHeight;
      const b = page.build;
      if (status) { status.textContent = b.status; status.className = "badge build-" + b.status; }
      if (["succeeded", "failed", "canceled"].includes(b.status)) {
        pre.dataset.done = "true";
        await finished(b);
        return;
      }
    }
  }

  // finished runs when the followed build ends: the second half of a
  // restart, then a reload to show the new state.
  async function finished(b) {
    const ws = document.getElementById("ws");
    const startURL = ws && "/api/v1/workspaces/" + ws.dataset.ref + "/builds";
    const key = "restart:" + startURL;
    if (sessionStorage.getItem(key)) {
      sessionStorage.removeItem(key);
      if (b.transition === "stop" && b.status === "succeeded") {
        try { await api("POST", startURL, { transition: "start" }); } catch (e) { flash(e.message); return; }
      }
    }
    await sleep(500);
    location.reload();
  }

  // pollWorkspace refreshes the agents' connection state while the page
  // is visible.
  async function pollWorkspace(ws) {
    for (;;) {
      await sleep(3000);
      if (document.hidden) continue;
      let w;
      try { w = await api("GET", "/api/v1/workspaces/" + ws.dataset.ref); } catch (e) {
        if (e.status === 404) return; // deleted
        continue;
      }
      for (const a of w.agents || []) {
        const st = document.querySelector('[data-agent-status="' + CSS.escape(a.name) + '"]');
        if (st && st.textContent !== a.status) { st.textContent = a.status; st.className = "badge agent-" + a.status; }
        const lc = document.querySelector('[data-agent-lifecycle="' + CSS.escape(a.name) + '"]');
        if (lc) lc.textContent = a.lifecycle;
        const seen = document.querySelector('[data-agent-seen="' + CSS.escape(a.name) + '"]');
        if (seen && a.status === "connected") seen.textContent = "now";
      }
    }
  }

  const pre = document.getElementById("build-log");
  if (pre) {
    pre.scrollTop = pre.scrollHeight;
    if (pre.dataset.done !== "true") followBuildLog(pre);
  }
  const ws = document.getElementById("ws");
  if (ws) pollWorkspace(ws);
})();
