// The citizen's join page: preview, devices, name and PIN; then the node's WebRTC signalling
// (README "Joining a room"): join -> joined (conference or lobby) -> offer/answer -> media.
// Follows a redirect to the node that hosts the room; reconnects by itself (to this page's own
// node, for a bounded time) when the network or the room's node drops: media that fails while the
// signalling lives is restarted on the same participant, and a new socket presents the resume
// token of `joined`, so the node gives back the same participant, past the lobby if it was.
// window.vdxCall exposes the state for tests.
"use strict";
(function () {
  var $ = function (id) { return document.getElementById(id); };
  var q = new URLSearchParams(location.search);
  var conference = (q.get("conference") || "").trim();
  var startDato = q.get("start_dato") || "";
  var micParam = (q.get("muteMicrophone") || "").toLowerCase();
  var call = window.vdxCall = {
    state: "prejoin", role: null, participantId: null, pc: null, ws: null,
    reconnects: 0, muted: false, cameraOff: false, selfHidden: false, lastError: null, node: null, url: null, redirects: 0,
    resumeToken: null, resumed: 0, mediaRestarts: 0,
    mayPresent: false, presenting: false, presenter: null, screenPc: null, watchPc: null,
  };
  var MAX_HOPS = 3;               // redirects followed for one attempt (a loop ends there)
  var MAX_MEDIA_RESTARTS = 3;     // media restarts in a row on a live socket before the socket goes too
  var restartsInRow = 0;          // since the media last connected; call.mediaRestarts counts them all
  var RECONNECT_FOR_MS = 60000;   // how long to try to get back in after a drop
  var retryUntil = 0;             // end of the current reconnection window (0: none)
  var local = null;          // MediaStream of the preview (sent into the call)
  var wantJoin = false;      // the user asked to be in the meeting (reconnect while true)
  var joinedOnce = false;
  var retryTimer = null, statsTimer = null, disconnectTimer = null;
  var iceServers = [];

  function setView(name) {
    call.state = name;
    ["prejoin", "lobby", "call", "ended"].forEach(function (v) { $(v).hidden = v !== name; });
    $("dial-form").hidden = !(name === "call" && call.role === "host"); // hosts may call someone in
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
    // The room's picture never holds your own camera: this corner is where you see yourself.
    $("self").hidden = call.selfHidden;
    $("self-toggle").setAttribute("aria-pressed", String(call.selfHidden));
    $("self-toggle").textContent = vdx.t(call.selfHidden ? "call.selfShow" : "call.selfHide");
  }

  // ---- signalling ------------------------------------------------------------------------
  function send(msg) { if (call.ws && call.ws.readyState === 1) call.ws.send(JSON.stringify(msg)); }

  // The entry is this page's own node; it sends the join on to the room's node (redirect).
  function entryUrl() {
    var proto = location.protocol === "https:" ? "wss:" : "ws:";
    return proto + "//" + location.host + "/ws/rooms/" + encodeURIComponent(conference);
  }
  function connect(url, hops) {
    clearTimeout(retryTimer);
    var ws = new WebSocket(url || entryUrl());
    call.ws = ws; call.url = url || entryUrl();
    var finished = false; // bye or a refusal: no reconnect
    var redirectTo = null, retryIn = null;
    ws.onopen = function () { sendJoin(); };
    ws.onmessage = function (ev) {
      if (call.ws !== ws) return; // a socket we left (its place resumed on a new one)
      var msg; try { msg = JSON.parse(ev.data); } catch (e) { return; }
      switch (msg.type) {
        case "redirect":
          // another node hosts the room: the same join goes there (browsers follow no HTTP redirect
          // on a WebSocket); only ws: and wss: addresses, and only so many hops
          if (/^wss?:\/\//.test(String(msg.url)) && (hops || 0) < MAX_HOPS) { redirectTo = msg.url; call.node = msg.node || null; call.redirects += 1; }
          else { finished = true; wantJoin = false; onError({ code: "redirect_loop" }); }
          ws.close();
          break;
        case "joined":
          joinedOnce = true; call.reconnects = 0; retryUntil = 0; restartsInRow = 0;
          call.role = msg.role; call.participantId = msg.participantId; call.token = msg.token;
          call.resumeToken = msg.resumeToken || null; if (msg.resumed) call.resumed += 1;
          iceServers = msg.iceServers || []; // TURN credentials for this participant, they expire
          call.mayPresent = !!msg.mayPresent;
          problem(""); status("");
          setView(msg.state === "lobby" ? "lobby" : "call");
          if (msg.state === "lobby") lobbyText(msg.lobbyReason);
          if (msg.muted && !call.muted) { call.muted = true; applyLocalState(); }
          else if (call.muted) send({ type: "mute", muted: true });
          startMedia();
          break;
        case "answer":
          if (call.pc) {
            var answered = call.pc;
            answered.setRemoteDescription({ type: "answer", sdp: msg.sdp }).catch(function (e) {
              // a browser that cannot take the node's new media session on its old connection
              // offers from a new one
              if (call.iceRestart === answered && call.pc === answered) startMedia(); else problem(String(e));
            });
          }
          break;
        case "presenting": if (call.screenPc) call.screenPc.setRemoteDescription({ type: "answer", sdp: msg.sdp }).catch(function () { stopPresenting(true); problem(vdx.t("present.failed")); }); break;
        case "watching": if (call.watchPc) call.watchPc.setRemoteDescription({ type: "answer", sdp: msg.sdp }).catch(function () { stopWatching(); }); break;
        case "presentation": onPresentation(msg); break;
        case "presentation_taken":
          // someone else presents now: our capture stops, and we watch theirs (the "presentation"
          // message that follows)
          stopPresenting(false);
          status(vdx.t("present.takenOver", { name: msg.displayName || "" }));
          break;
        case "ringing": status(vdx.t("join.ringing")); break; // the alias is a browser waiting on its page
        case "lobby": setView("lobby"); lobbyText(msg.reason); break;
        case "admitted": setView("call"); break;
        case "muted": call.muted = !!msg.muted; applyLocalState(); break;
        case "dial":
          // a host's dial-out from this room got further: its progress, then its outcome
          status(vdx.t("dial." + msg.state, { destination: String(msg.destination || "").replace(/^sips?:/, ""), detail: msg.detail || "" }));
          break;
        case "bye":
          // the node lost our media (ICE/DTLS failed: a network drop) or is stopping (its rooms go
          // to another node, or it restarts): join again by ourselves
          if ((msg.reason === "media_failed" || msg.reason === "node_shutdown") && wantJoin) { status(vdx.t("call.reconnecting")); break; }
          finished = true; wantJoin = false;
          endCall(vdx.t("bye." + (msg.reason || "left")));
          break;
        case "error":
          // our place is gone (kept too long, or the room ended meanwhile): join afresh
          if (msg.code === "resume_refused") { call.resumeToken = null; sendJoin(); break; }
          // a refused presentation ends nothing but the presentation
          if (msg.code === "presentation_not_allowed") { stopPresenting(false); problem(vdx.t("present.notAllowed")); break; }
          if (msg.code === "no_presentation" || msg.code === "not_in_conference") { stopPresenting(false); stopWatching(); break; }
          // the room is moving between nodes (its node died): try again shortly; so is a room
          // that was there a moment ago and is not found while its new node takes it
          if (msg.code === "moving" || (msg.code === "not_found" && joinedOnce && wantJoin)) { retryIn = Number(msg.retryAfter) || 2; break; }
          onError(msg); if (["pin_required", "wrong_pin", "bad_request", "bad_sdp", "microphone_locked"].indexOf(msg.code) < 0) finished = true; break;
      }
    };
    ws.onclose = function () {
      if (call.ws !== ws) return;
      stopMedia();
      // the node ends a presentation whose presenter's socket dropped; a resume tells us anew
      stopPresenting(false); stopWatching();
      if (finished || !wantJoin) return;
      if (redirectTo) { connect(redirectTo, (hops || 0) + 1); return; }
      if (retryIn !== null) { reconnectSoon(retryIn * 1000); return; }
      if (!joinedOnce) { setView("prejoin"); problem(vdx.t("error.network")); $("join").disabled = false; wantJoin = false; return; }
      reconnectSoon();
    };
  }
  // After a drop, the resume token asks for our place back; the same join goes on a redirect.
  function sendJoin() {
    var msg = { type: "join", displayName: $("name").value.trim(), pin: $("pin").value.trim() || undefined };
    if (call.resumeToken) msg.resume = call.resumeToken;
    send(msg);
  }
  // Back to the entry node, with backoff, for RECONNECT_FOR_MS; then the page says it gave up.
  function reconnectSoon(after) {
    if (!retryUntil) retryUntil = Date.now() + RECONNECT_FOR_MS;
    if (Date.now() >= retryUntil) { retryUntil = 0; giveUp(); return; }
    call.reconnects += 1;
    // short steps: a dead node's rooms are placed again within seconds, and a try costs little
    var wait = after || Math.min(3000, 500 * Math.pow(2, Math.min(call.reconnects - 1, 3)));
    call.state = "reconnecting";
    status(vdx.t(joinedOnce ? "call.reconnecting" : "join.connecting"));
    retryTimer = setTimeout(function () { if (wantJoin) connect(); }, Math.min(wait, Math.max(0, retryUntil - Date.now())));
  }
  function giveUp() {
    if (joinedOnce) { endCall(vdx.t("call.reconnectFailed")); return; }
    wantJoin = false; setView("prejoin"); status(""); problem(vdx.t("error.network")); $("join").disabled = false;
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
    // The node has no room for this join right now (capacity kept for clinical meetings, or
    // full): say so and when to try again; Join stays on for the retry.
    if (code === "capacity_clinical_reserve" || code === "capacity_full") text = vdx.t("error." + code, { wait: waitText(msg.retryAfter) });
    problem(text === "error." + code ? vdx.t("error.generic") + " (" + code + ")" : text);
  }
  // Too many wrong PINs from this network: say how long to wait, and keep Join off until then
  // (a try before that is refused unchecked anyway).
  function pinWait(seconds) {
    var s = Math.max(1, Math.ceil(Number(seconds) || 1));
    $("join").disabled = true;
    setTimeout(function () { if (call.state === "prejoin") $("join").disabled = false; }, s * 1000);
    return vdx.t("error.pin_wait", { wait: waitText(s) });
  }
  function waitText(seconds) {
    var s = Math.max(1, Math.ceil(Number(seconds) || 1));
    return s === 1 ? vdx.t("wait.second") : s <= 90 ? vdx.t("wait.seconds", { n: s }) : vdx.t("wait.minutes", { n: Math.ceil(s / 60) });
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
      if (pc.connectionState === "failed") restartMedia();
      else if (pc.connectionState === "disconnected") {
        status(vdx.t("call.unstable"));
        disconnectTimer = setTimeout(function () { if (call.pc === pc && pc.connectionState !== "connected") restartMedia(); }, 5000);
      } else if (pc.connectionState === "connected") { status(""); restartsInRow = 0; }
    };
    await vdx.offerGathered(pc);
    if (call.pc === pc) send({ type: "offer", sdp: pc.localDescription.sdp });
    statsTimer = setInterval(sampleStats, 2000);
  }
  // The media path failed (a network change): an ICE restart (new candidates, a new offer on
  // the same socket) keeps the participant; the node answers with a new media session (a new
  // DTLS handshake on the same peer connection). If that does not help, or the socket is gone
  // too, the socket goes and the resume token brings us back.
  function restartMedia() {
    if (call.ws && call.ws.readyState === 1 && restartsInRow < MAX_MEDIA_RESTARTS) {
      restartsInRow += 1;
      call.mediaRestarts += 1;
      status(vdx.t("call.reconnecting"));
      restartIce(call.pc).catch(function () { startMedia(); });
    } else dropAndReconnect();
  }
  async function restartIce(pc) {
    if (!pc || !pc.restartIce || pc.signalingState !== "stable") throw new Error("no ICE restart");
    var gathered = new Promise(function (resolve) {
      var t = setTimeout(resolve, 4000);
      pc.addEventListener("icecandidate", function (ev) { if (!ev.candidate) { clearTimeout(t); resolve(); } });
    });
    pc.restartIce();
    await pc.setLocalDescription(await pc.createOffer({ iceRestart: true }));
    await gathered;
    if (call.pc !== pc) return;
    call.iceRestart = pc;
    call.iceRestarts = (call.iceRestarts || 0) + 1;
    send({ type: "offer", sdp: pc.localDescription.sdp });
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
  // ---- presentation ------------------------------------------------------------------------
  // The screen goes to the node, and the presentation comes back, on peer connections of their
  // own: the node answers every offer on the call's connection with a new media session (that
  // is how it restarts media), so renegotiating that one would restart the call's media each
  // time someone starts or stops presenting.
  async function offerFrom(pc) {
    await vdx.offerGathered(pc);
    return pc.localDescription.sdp;
  }
  async function startPresenting() {
    if (!call.mayPresent) { problem(vdx.t("present.notAllowed")); return; }
    var screen;
    try { screen = await navigator.mediaDevices.getDisplayMedia({ video: true, audio: false }); }
    catch (e) { problem(vdx.t("present.failed")); return; }
    var track = screen.getVideoTracks()[0];
    if (!track) { problem(vdx.t("present.failed")); return; }
    stopPresenting(false); stopWatching();
    problem("");
    var pc = new RTCPeerConnection({ iceServers: iceServers });
    call.screenPc = pc; call.screen = screen; call.presenting = true;
    track.addEventListener("ended", function () { if (call.screen === screen) stopPresenting(true); }); // the browser's own "stop sharing"
    pc.addTransceiver(track, { direction: "sendonly", streams: [screen] });
    showPresentation(screen);
    applyPresentState();
    var sdp = await offerFrom(pc);
    if (call.screenPc === pc) send({ type: "present", sdp: sdp });
  }
  function stopPresenting(tellNode) {
    var was = call.presenting;
    if (call.screenPc) { try { call.screenPc.close(); } catch (e) {} }
    if (call.screen) call.screen.getTracks().forEach(function (t) { t.stop(); });
    call.screenPc = null; call.screen = null; call.presenting = false;
    if (was && tellNode) send({ type: "stop_presenting" });
    if (was && !call.watchPc) showPresentation(null);
    applyPresentState();
  }
  async function startWatching() {
    stopWatching();
    var pc = new RTCPeerConnection({ iceServers: iceServers });
    call.watchPc = pc;
    pc.addTransceiver("video", { direction: "recvonly" });
    pc.ontrack = function (ev) { if (call.watchPc === pc) showPresentation(new MediaStream([ev.track])); };
    var sdp = await offerFrom(pc);
    if (call.watchPc === pc) send({ type: "watch", sdp: sdp });
  }
  function stopWatching() {
    if (!call.watchPc) return;
    try { call.watchPc.close(); } catch (e) {}
    call.watchPc = null;
    if (!call.presenting) showPresentation(null);
  }
  function showPresentation(stream) {
    $("presentation").srcObject = stream;
    $("presentation-stage").hidden = !stream;
    if (stream) $("presentation").play().catch(function () {});
  }
  // Who presents now: the note says so, and everyone but the presenter watches.
  function onPresentation(msg) {
    call.presenter = msg.presenterId || null;
    var mine = call.presenter !== null && call.presenter === call.participantId;
    if (!call.presenter) { stopPresenting(false); stopWatching(); }
    else if (!mine) { if (call.presenting) stopPresenting(false); if (!call.watchPc) startWatching(); }
    var note = $("presenter-note");
    note.textContent = !call.presenter ? "" : mine ? vdx.t("present.you") : vdx.t("present.by", { name: msg.displayName || "" });
    note.hidden = !call.presenter;
  }
  function applyPresentState() {
    $("present").setAttribute("aria-pressed", String(call.presenting));
    $("present").textContent = vdx.t(call.presenting ? "present.stop" : "present.start");
  }

  function endCall(text) {
    wantJoin = false;
    stopPresenting(false); stopWatching();
    stopMedia();
    $("ended-text").textContent = text;
    setView("ended");
    status("");
  }

  // ---- controls ----------------------------------------------------------------------------
  $("join-form").addEventListener("submit", function (ev) {
    call.resumeToken = null; // the user's own join: a new participant
    ev.preventDefault();
    problem("");
    if (!$("name").value.trim()) { $("name").setAttribute("aria-invalid", "true"); problem(vdx.t("join.nameRequired")); $("name").focus(); return; }
    $("name").removeAttribute("aria-invalid"); $("pin").removeAttribute("aria-invalid");
    try { localStorage.setItem("vdx.name", $("name").value.trim()); } catch (e) {}
    $("join").disabled = true;
    wantJoin = true; joinedOnce = false; retryUntil = 0;
    status(vdx.t("join.connecting"));
    if (call.ws && call.ws.readyState === 1 && (call.lastError === "wrong_pin" || call.lastError === "pin_required")) {
      send({ type: "join", displayName: $("name").value.trim(), pin: $("pin").value.trim() || undefined });
    } else connect();
  });
  $("camera").addEventListener("change", startPreview);
  $("microphone").addEventListener("change", startPreview);
  $("mute").addEventListener("click", function () { call.muted = !call.muted; applyLocalState(); send({ type: "mute", muted: call.muted }); });
  $("camera-off").addEventListener("click", function () { call.cameraOff = !call.cameraOff; applyLocalState(); });
  $("present").addEventListener("click", function () { if (call.presenting) stopPresenting(true); else startPresenting(); });
  $("self-toggle").addEventListener("click", function () { call.selfHidden = !call.selfHidden; applyLocalState(); });
  function leave() { wantJoin = false; call.resumeToken = null; send({ type: "leave" }); endCall(vdx.t("bye.left")); }
  $("leave").addEventListener("click", leave);
  // A host calls a SIP address into the room (the conference control API with their participant
  // token); how the call goes comes back as "dial" messages.
  $("dial-form").addEventListener("submit", async function (ev) {
    ev.preventDefault();
    var to = $("dial-to").value.trim();
    if (!to) return;
    if (!/^sips?:/i.test(to)) to = "sip:" + to;
    problem("");
    try {
      var config = await (await fetch("/web/config")).json();
      var res = await fetch(config.nodeBase + "/conferences/" + encodeURIComponent(conference) + "/participants/dial", {
        method: "POST",
        headers: { "Content-Type": "application/json", Authorization: "Bearer " + call.token },
        body: JSON.stringify({ destination: to, role: "guest" })
      });
      if (res.status === 202) { $("dial-to").value = ""; return; }
      var body = {}; try { body = await res.json(); } catch (e) {}
      problem(vdx.t("dial.refused", { detail: body.detailed_error || String(res.status) }));
    } catch (e) { problem(vdx.t("dial.refused", { detail: String(e) })); }
  });
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
