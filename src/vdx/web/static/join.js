// The citizen's join page: preview, devices, name and PIN; then the node's WebRTC signalling
// (README "Joining a room"): join -> joined (conference or lobby) -> offer/answer -> media.
// Reconnects by itself when the network drops. window.vdxCall exposes the state for tests.
"use strict";
(function () {
  var $ = function (id) { return document.getElementById(id); };
  var q = new URLSearchParams(location.search);
  var conference = (q.get("conference") || "").trim();
  var startDato = q.get("start_dato") || "";
  var micParam = (q.get("muteMicrophone") || "").toLowerCase();
  var call = window.vdxCall = {
    state: "prejoin", role: null, participantId: null, pc: null, ws: null,
    reconnects: 0, muted: false, cameraOff: false, lastError: null,
  };
  var local = null;          // MediaStream of the preview (sent into the call)
  var wantJoin = false;      // the user asked to be in the meeting (reconnect while true)
  var joinedOnce = false;
  var retryTimer = null, statsTimer = null, disconnectTimer = null;
  var iceServers = [];

  function setView(name) {
    call.state = name;
    ["prejoin", "lobby", "call", "ended"].forEach(function (v) { $(v).hidden = v !== name; });
  }
  function status(text) { vdx.message($("status"), "info", text || ""); }
  function problem(text) { vdx.message($("problem"), "error", text || ""); if (text) $("problem").focus && $("problem").setAttribute("tabindex", "-1"); }

  // The room's picture and sound. A browser may refuse to play sound the user did not start
  // (Firefox, Safari: when the join click is too long ago or was not a user's): then a button
  // starts them, instead of a still picture and silence.
  function playRemote() {
    $("remote").play().then(function () { call.playBlocked = false; $("play").hidden = true; })
      .catch(function (e) { if (e && e.name === "NotAllowedError") { call.playBlocked = true; $("play").hidden = false; } });
  }

  // ---- preview and devices -------------------------------------------------------------
  async function startPreview() {
    var cam = $("camera").value, mic = $("microphone").value;
    if (local) local.getTracks().forEach(function (t) { t.stop(); });
    local = null;
    var video = { width: { ideal: 640 }, height: { ideal: 360 } };
    if (cam) video.deviceId = { exact: cam };
    try {
      local = await navigator.mediaDevices.getUserMedia({ video: video, audio: mic ? { deviceId: { exact: mic } } : true });
    } catch (e) {
      try { local = await navigator.mediaDevices.getUserMedia({ audio: true }); problem(vdx.t("join.noCamera")); }
      catch (e2) { local = new MediaStream(); problem(vdx.t("join.noDevices")); }
    }
    ["preview", "lobby-self", "self"].forEach(function (id) { $(id).srcObject = local; });
    applyLocalState();
    await listDevices();
  }
  async function listDevices() {
    var devices = await navigator.mediaDevices.enumerateDevices();
    [["camera", "videoinput"], ["microphone", "audioinput"]].forEach(function (pair) {
      var sel = $(pair[0]), current = sel.value;
      var inUse = local && local.getTracks().filter(function (t) { return t.kind === (pair[1] === "videoinput" ? "video" : "audio"); })[0];
      var inUseId = inUse && inUse.getSettings ? inUse.getSettings().deviceId : "";
      sel.innerHTML = "";
      devices.filter(function (d) { return d.kind === pair[1]; }).forEach(function (d, i) {
        var o = document.createElement("option");
        o.value = d.deviceId; o.textContent = d.label || (vdx.t("join." + pair[0]) + " " + (i + 1));
        sel.appendChild(o);
      });
      sel.value = current || inUseId || (sel.options[0] && sel.options[0].value) || "";
    });
  }
  function applyLocalState() {
    if (!local) return;
    local.getAudioTracks().forEach(function (t) { t.enabled = !call.muted; });
    local.getVideoTracks().forEach(function (t) { t.enabled = !call.cameraOff; });
    $("mute").setAttribute("aria-pressed", String(call.muted));
    $("mute").textContent = vdx.t(call.muted ? "call.unmute" : "call.mute");
    $("camera-off").setAttribute("aria-pressed", String(call.cameraOff));
    $("camera-off").textContent = vdx.t(call.cameraOff ? "call.cameraOn" : "call.cameraOff");
  }

  // ---- signalling ------------------------------------------------------------------------
  function send(msg) { if (call.ws && call.ws.readyState === 1) call.ws.send(JSON.stringify(msg)); }

  function connect() {
    clearTimeout(retryTimer);
    var proto = location.protocol === "https:" ? "wss:" : "ws:";
    var ws = new WebSocket(proto + "//" + location.host + "/ws/rooms/" + encodeURIComponent(conference));
    call.ws = ws;
    var finished = false; // bye or a refusal: no reconnect
    ws.onopen = function () {
      send({ type: "join", displayName: $("name").value.trim(), pin: $("pin").value.trim() || undefined });
    };
    ws.onmessage = function (ev) {
      var msg; try { msg = JSON.parse(ev.data); } catch (e) { return; }
      switch (msg.type) {
        case "joined":
          joinedOnce = true; call.reconnects = 0;
          call.role = msg.role; call.participantId = msg.participantId; call.token = msg.token;
          iceServers = msg.iceServers || []; // TURN credentials for this participant, they expire
          problem(""); status("");
          setView(msg.state === "lobby" ? "lobby" : "call");
          if (msg.state === "lobby") lobbyText(msg.lobbyReason);
          if (msg.muted && !call.muted) { call.muted = true; applyLocalState(); }
          else if (call.muted) send({ type: "mute", muted: true });
          startMedia();
          break;
        case "answer":
          if (call.pc) call.pc.setRemoteDescription({ type: "answer", sdp: msg.sdp }).catch(function (e) { problem(String(e)); });
          break;
        case "lobby": setView("lobby"); lobbyText(msg.reason); break;
        case "admitted": setView("call"); break;
        case "muted": call.muted = !!msg.muted; applyLocalState(); break;
        case "bye":
          // the node lost our media (ICE/DTLS failed): a network drop, so join again by ourselves
          if (msg.reason === "media_failed" && wantJoin) { status(vdx.t("call.reconnecting")); break; }
          finished = true; wantJoin = false;
          endCall(vdx.t("bye." + (msg.reason || "left")));
          break;
        case "error": onError(msg); if (["pin_required", "wrong_pin", "bad_request", "bad_sdp", "microphone_locked"].indexOf(msg.code) < 0) finished = true; break;
      }
    };
    ws.onclose = function () {
      if (call.ws !== ws) return;
      stopMedia();
      if (finished || !wantJoin) return;
      if (!joinedOnce) { setView("prejoin"); problem(vdx.t("error.network")); $("join").disabled = false; wantJoin = false; return; }
      reconnectSoon();
    };
  }
  function reconnectSoon() {
    call.reconnects += 1;
    var wait = Math.min(10000, 500 * Math.pow(2, Math.min(call.reconnects - 1, 5)));
    call.state = "reconnecting";
    status(vdx.t("call.reconnecting"));
    retryTimer = setTimeout(function () { if (wantJoin) connect(); }, wait);
  }
  function lobbyText(reason) { $("lobby-text").textContent = vdx.t(reason === "locked" ? "lobby.locked" : "lobby.waiting"); }

  function onError(msg) {
    call.lastError = msg.code;
    var code = msg.code;
    if (code === "microphone_locked") { call.muted = true; applyLocalState(); status(vdx.t("error.microphone_locked")); return; }
    if (code === "bad_request" || code === "bad_sdp") { problem(vdx.t("error.generic") + " (" + code + ")"); return; }
    status("");
    var text = vdx.t("error." + code, { attempts: msg.attemptsLeft, start: startDato ? vdx.fmtTime(startDato) : "" });
    if (code === "not_open" && !startDato) text = vdx.t("error.not_open_nostart");
    wantJoin = false;
    setView("prejoin"); $("join").disabled = false;
    if (code === "pin_required" || code === "wrong_pin") { $("pin-field").hidden = false; $("pin").setAttribute("aria-invalid", "true"); $("pin").focus(); }
    if (["not_open", "ended", "room_full", "not_found", "too_many_pin_attempts"].indexOf(code) >= 0) $("join").disabled = code === "ended" || code === "not_found";
    if (code === "pin_wait") text = pinWait(msg.retryAfter);
    problem(text === "error." + code ? vdx.t("error.generic") + " (" + code + ")" : text);
  }
  // Too many wrong PINs from this network: say how long to wait, and keep Join off until then
  // (a try before that is refused unchecked anyway).
  function pinWait(seconds) {
    var s = Math.max(1, Math.ceil(Number(seconds) || 1));
    var wait = s === 1 ? vdx.t("wait.second") : s <= 90 ? vdx.t("wait.seconds", { n: s }) : vdx.t("wait.minutes", { n: Math.ceil(s / 60) });
    $("join").disabled = true;
    setTimeout(function () { if (call.state === "prejoin") $("join").disabled = false; }, s * 1000);
    return vdx.t("error.pin_wait", { wait: wait });
  }

  // ---- media -----------------------------------------------------------------------------
  async function startMedia() {
    stopMedia();
    var pc = new RTCPeerConnection({ iceServers: iceServers });
    call.pc = pc;
    var remote = new MediaStream();
    $("remote").srcObject = remote;
    pc.ontrack = function (ev) { remote.addTrack(ev.track); playRemote(); };
    var a = local.getAudioTracks()[0], v = local.getVideoTracks()[0];
    if (a) pc.addTrack(a, local); else pc.addTransceiver("audio", { direction: "sendrecv" });
    if (v) pc.addTrack(v, local); else pc.addTransceiver("video", { direction: "sendrecv" });
    pc.onconnectionstatechange = function () {
      if (call.pc !== pc) return;
      clearTimeout(disconnectTimer);
      if (pc.connectionState === "failed") dropAndReconnect();
      else if (pc.connectionState === "disconnected") {
        status(vdx.t("call.unstable"));
        disconnectTimer = setTimeout(function () { if (call.pc === pc && pc.connectionState !== "connected") dropAndReconnect(); }, 5000);
      } else if (pc.connectionState === "connected") status("");
    };
    await pc.setLocalDescription(await pc.createOffer());
    await new Promise(function (resolve) {
      if (pc.iceGatheringState === "complete") return resolve();
      var t = setTimeout(resolve, 4000);
      pc.addEventListener("icegatheringstatechange", function () { if (pc.iceGatheringState === "complete") { clearTimeout(t); resolve(); } });
    });
    if (call.pc === pc) send({ type: "offer", sdp: pc.localDescription.sdp });
    statsTimer = setInterval(sampleStats, 2000);
  }
  function dropAndReconnect() {
    // the socket may still look open on a dead network: close it, onclose reconnects
    if (call.ws) { try { call.ws.close(); } catch (e) {} }
  }
  function stopMedia() {
    clearInterval(statsTimer); clearTimeout(disconnectTimer);
    if (call.pc) { try { call.pc.close(); } catch (e) {} }
    call.pc = null;
  }
  var prev = null;
  async function sampleStats() {
    var pc = call.pc; if (!pc) return;
    var report = await pc.getStats();
    var s = { t: performance.now(), bytes: 0, lost: 0, received: 0, frames: 0, rtt: null, audioSamples: 0 };
    report.forEach(function (r) {
      if (r.type === "inbound-rtp") {
        s.bytes += r.bytesReceived || 0; s.lost += r.packetsLost || 0; s.received += r.packetsReceived || 0;
        if (r.kind === "video") s.frames += r.framesDecoded || 0;
        if (r.kind === "audio") s.audioSamples += r.totalSamplesReceived || 0;
      }
      if (r.type === "candidate-pair" && r.nominated && r.currentRoundTripTime !== undefined) s.rtt = r.currentRoundTripTime;
    });
    call.stats = s;
    if (prev) {
      var dt = (s.t - prev.t) / 1000;
      var lost = s.lost - prev.lost, got = s.received - prev.received;
      var loss = (lost + got) > 0 ? lost / (lost + got) : 0;
      var kbps = Math.round((s.bytes - prev.bytes) * 8 / 1000 / dt);
      var level = (got === 0 || s.frames === prev.frames) ? "poor" : (loss > 0.08 || (s.rtt || 0) > 0.6) ? "poor" : (loss > 0.02 || (s.rtt || 0) > 0.3) ? "fair" : "good";
      var el = $("quality");
      el.dataset.level = level;
      el.textContent = vdx.t("quality." + level) + " · " + kbps + " kbit/s" + (loss > 0 ? " · " + (loss * 100).toFixed(1) + "% " + vdx.t("quality.loss") : "");
      call.quality = { level: level, kbps: kbps, loss: loss, rtt: s.rtt };
    }
    prev = s;
  }
  function endCall(text) {
    wantJoin = false;
    stopMedia();
    $("ended-text").textContent = text;
    setView("ended");
    status("");
  }

  // ---- controls ----------------------------------------------------------------------------
  $("join-form").addEventListener("submit", function (ev) {
    ev.preventDefault();
    problem("");
    if (!$("name").value.trim()) { $("name").setAttribute("aria-invalid", "true"); problem(vdx.t("join.nameRequired")); $("name").focus(); return; }
    $("name").removeAttribute("aria-invalid"); $("pin").removeAttribute("aria-invalid");
    try { localStorage.setItem("vdx.name", $("name").value.trim()); } catch (e) {}
    $("join").disabled = true;
    wantJoin = true; joinedOnce = false;
    status(vdx.t("join.connecting"));
    if (call.ws && call.ws.readyState === 1 && (call.lastError === "wrong_pin" || call.lastError === "pin_required")) {
      send({ type: "join", displayName: $("name").value.trim(), pin: $("pin").value.trim() || undefined });
    } else connect();
  });
  $("camera").addEventListener("change", startPreview);
  $("microphone").addEventListener("change", startPreview);
  $("mute").addEventListener("click", function () { call.muted = !call.muted; applyLocalState(); send({ type: "mute", muted: call.muted }); });
  $("camera-off").addEventListener("click", function () { call.cameraOff = !call.cameraOff; applyLocalState(); });
  function leave() { wantJoin = false; send({ type: "leave" }); endCall(vdx.t("bye.left")); }
  $("leave").addEventListener("click", leave);
  $("play").addEventListener("click", playRemote);
  $("lobby-leave").addEventListener("click", leave);
  $("rejoin").addEventListener("click", function () {
    setView("prejoin"); $("join").disabled = false; $("join").focus();
  });
  window.addEventListener("pagehide", function () { send({ type: "leave" }); });

  // ---- start -------------------------------------------------------------------------------
  (async function () {
    await vdx.loadTexts();
    if (!conference) {
      problem(vdx.t("error.no_conference"));
      $("join-form").querySelectorAll("input,select,button").forEach(function (el) { el.disabled = true; });
      return;
    }
    $("pin").value = q.get("pin") || "";
    if (micParam === "muted" || micParam === "off" || micParam === "true") call.muted = true;
    try { $("name").value = localStorage.getItem("vdx.name") || ""; } catch (e) {}
    if (!window.RTCPeerConnection || !navigator.mediaDevices) { problem(vdx.t("error.unsupported")); $("join").disabled = true; return; }
    await startPreview();
    call.ready = true;
  })();
})();
