// The browser terminal (docs/terminal.md). Frames: one per message, a
// type byte then the payload ('i' input, 'r' resize, 'p' ping from us;
// 'h' hello, 'o' output, 'P' pong, 'x' exit, 'e' error from the agent).
(function () {
  "use strict";
  var el = document.getElementById("term");
  var pathEl = document.getElementById("term-path");
  var rttEl = document.getElementById("term-rtt");
  var ws = el.dataset.workspace, agent = el.dataset.agent || "";
  var ice = (el.dataset.ice || "").split(" ").filter(Boolean);
  var csrf = (document.querySelector('meta[name="csrf-token"]') || {}).content || "";
  var RTC_TIMEOUT_MS = 8000;

  // crypto.randomUUID exists only in secure contexts (HTTPS, localhost).
  function newUUID() {
    var b = crypto.getRandomValues(new Uint8Array(16));
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    var h = Array.prototype.map.call(b, function (x) { return (x + 256).toString(16).slice(1); }).join("");
    return h.slice(0, 8) + "-" + h.slice(8, 12) + "-" + h.slice(12, 16) + "-" + h.slice(16, 20) + "-" + h.slice(20);
  }
  var key = "devmesh-term:" + ws + ":" + agent;
  var session = sessionStorage.getItem(key);
  if (!session) {
    session = newUUID();
    sessionStorage.setItem(key, session);
  }

  var term = new Terminal({ cursorBlink: true, scrollback: 5000 });
  var fit = new FitAddon.FitAddon();
  term.loadAddon(fit);
  term.open(el);
  fit.fit();
  window.devmeshTerm = { term: term, session: session, path: "", rtt: -1, hello: null };

  var enc = new TextEncoder();
  var cur = null; // {send(bytes), close()}
  var ended = false;
  var retry = 500;

  function frame(t, payload) {
    var b = new Uint8Array(1 + payload.length);
    b[0] = t.charCodeAt(0);
    b.set(payload, 1);
    return b;
  }
  function resizeFrame() {
    var b = new Uint8Array(5);
    b[0] = 114; // 'r'
    new DataView(b.buffer).setUint16(1, term.cols);
    new DataView(b.buffer).setUint16(3, term.rows);
    return b;
  }
  function setPath(p, cls) {
    pathEl.textContent = p;
    pathEl.className = cls;
    window.devmeshTerm.path = cls;
  }

  term.onData(function (d) { if (cur) cur.send(frame("i", enc.encode(d))); });
  term.onResize(function () { if (cur) cur.send(resizeFrame()); });
  window.addEventListener("resize", function () { fit.fit(); });

  var dec = new TextDecoder();
  function onFrame(buf) {
    var b = new Uint8Array(buf);
    if (b.length === 0) return;
    var p = b.subarray(1);
    switch (String.fromCharCode(b[0])) {
      case "o": term.write(p); break;
      case "h": window.devmeshTerm.hello = JSON.parse(dec.decode(p)); retry = 500; break;
      case "P":
        var sent = Number(dec.decode(p));
        var rtt = performance.now() - sent;
        window.devmeshTerm.rtt = rtt;
        rttEl.textContent = "RTT " + rtt.toFixed(1) + " ms";
        break;
      case "x":
        ended = true;
        sessionStorage.removeItem(key);
        term.write("\r\n[session ended, exit status " + dec.decode(p) + "; reload for a new one]\r\n");
        setPath("ended", "down");
        break;
      case "e":
        term.write("\r\n[devmesh: " + dec.decode(p) + "]\r\n");
        break;
    }
  }
  function opened(t, label, cls) {
    cur = t;
    setPath(label, cls);
    t.send(resizeFrame());
  }
  function dropped(t) {
    if (cur !== t) return;
    cur = null;
    if (ended) return;
    setPath("reconnecting…", "down");
    setTimeout(connect, retry);
    retry = Math.min(retry * 2, 10000);
  }

  setInterval(function () {
    if (cur) cur.send(frame("p", enc.encode(String(performance.now()))));
  }, 2000);

  function api(path) {
    return "/api/v1/workspaces/" + encodeURIComponent(ws) + "/terminal/" + path;
  }

  function tryRTC() {
    return new Promise(function (resolve, reject) {
      var pc = new RTCPeerConnection({ iceServers: ice.length ? [{ urls: ice }] : [] });
      var dc = pc.createDataChannel("devmesh-terminal", { ordered: true });
      dc.binaryType = "arraybuffer";
      var done = false;
      var timer = setTimeout(function () { fail(new Error("WebRTC timed out")); }, RTC_TIMEOUT_MS);
      function fail(e) {
        if (done) return;
        done = true;
        clearTimeout(timer);
        pc.close();
        reject(e);
      }
      var t = {
        send: function (b) { if (dc.readyState === "open") dc.send(b); },
        close: function () { pc.close(); }
      };
      dc.onopen = function () {
        if (done) return;
        done = true;
        clearTimeout(timer);
        resolve(t);
      };
      dc.onmessage = function (ev) { onFrame(ev.data); };
      dc.onclose = function () { dropped(t); };
      pc.onconnectionstatechange = function () {
        if (pc.connectionState === "failed") { if (!done) fail(new Error("ICE failed")); else t.close(); dropped(t); }
      };
      pc.createOffer().then(function (o) { return pc.setLocalDescription(o); }).then(function () {
        return new Promise(function (res) {
          if (pc.iceGatheringState === "complete") return res();
          pc.onicegatheringstatechange = function () { if (pc.iceGatheringState === "complete") res(); };
          setTimeout(res, 1000);
        });
      }).then(function () {
        return fetch(api("offer"), {
          method: "POST", credentials: "same-origin",
          headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf },
          body: JSON.stringify({ session: session, agent: agent, sdp: pc.localDescription.sdp })
        });
      }).then(function (r) {
        if (!r.ok) return r.json().then(function (e) { throw new Error(e.message || r.status); });
        return r.json();
      }).then(function (a) {
        return pc.setRemoteDescription({ type: "answer", sdp: a.sdp });
      }).catch(fail);
    });
  }

  function relay() {
    var u = new URL(api("ws"), location.href);
    u.protocol = u.protocol === "https:" ? "wss:" : "ws:";
    u.searchParams.set("session", session);
    if (agent) u.searchParams.set("agent", agent);
    var s = new WebSocket(u);
    s.binaryType = "arraybuffer";
    var t = {
      send: function (b) { if (s.readyState === 1) s.send(b); },
      close: function () { s.close(); }
    };
    s.onopen = function () { opened(t, "relayed", "relayed"); };
    s.onmessage = function (ev) { onFrame(ev.data); };
    s.onclose = function () { dropped(t); };
  }

  function connect() {
    if (ended) return;
    setPath("connecting…", "down");
    if (!window.RTCPeerConnection) { relay(); return; }
    tryRTC().then(function (t) { opened(t, "direct (WebRTC)", "direct"); }, function (e) {
      console.log("devmesh: WebRTC failed, using the relay:", e.message);
      relay();
    });
  }
  window.addEventListener("online", function () { if (!cur) connect(); });
  connect();
  term.focus();
})();
