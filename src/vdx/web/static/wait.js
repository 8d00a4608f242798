// The point-to-point page: a person signs in as a device (name + secret, given by an admin) and
// waits; a call routed to browser:NAME rings here (caller's name, Answer / Decline). Answered,
// the same socket carries the call as on the join page (joined -> offer/answer -> media). After
// a call, or a drop, the page signs in again by itself and waits on. README "Devices and the
// point-to-point page". window.vdxCall exposes the state for tests.
"use strict";
(function () {
  var $ = function (id) { return document.getElementById(id); };
  var call = window.vdxCall = { state: "signin", ws: null, pc: null, callId: null, caller: null, lastError: null, rings: 0 };
  var device = null, secret = null;   // kept in this page only, to sign in again after a call
  var wantWait = false;
  var local = null, retryTimer = null, iceServers = [];

  function setView(name) {
    call.state = name;
    ["signin", "waiting", "ringing", "call"].forEach(function (v) { $(v).hidden = v !== name; });
  }
  function status(text) { vdx.message($("status"), "info", text || ""); }
  function problem(text) { vdx.message($("problem"), "error", text || ""); }
  function send(msg) { if (call.ws && call.ws.readyState === 1) call.ws.send(JSON.stringify(msg)); }

  async function startCamera() {
    if (local) return;
    try { local = await navigator.mediaDevices.getUserMedia({ video: { width: { ideal: 640 }, height: { ideal: 360 } }, audio: true }); }
    catch (e) {
      try { local = await navigator.mediaDevices.getUserMedia({ audio: true }); problem(vdx.t("join.noCamera")); }
      catch (e2) { local = new MediaStream(); problem(vdx.t("join.noDevices")); }
    }
    $("preview").srcObject = local; $("self").srcObject = local;
  }

  function connect() {
    clearTimeout(retryTimer);
    var proto = location.protocol === "https:" ? "wss:" : "ws:";
    var ws = new WebSocket(proto + "//" + location.host + "/ws/wait");
    call.ws = ws;
    var finished = false;   // refused or let go: no new sign-in by itself
    ws.onopen = function () { send({ type: "signin", name: device, secret: secret }); };
    ws.onmessage = function (ev) {
      if (call.ws !== ws) return;
      var msg; try { msg = JSON.parse(ev.data); } catch (e) { return; }
      switch (msg.type) {
        case "waiting":
          problem(""); status("");
          $("waiting-text").textContent = vdx.t("p2p.waitingAs", { name: msg.name });
          setView("waiting");
          break;
        case "ring":
          call.callId = msg.callId; call.caller = msg.displayName; call.rings += 1;
          $("caller").textContent = vdx.t("p2p.calling", { name: msg.displayName || "?" });
          $("ended-text").textContent = "";
          setView("ringing"); $("answer").focus();
          break;
        case "ring_stopped":
          if (msg.callId !== call.callId) break;
          call.callId = null;
          $("ended-text").textContent = vdx.t("p2p.stopped." + msg.reason);
          if (call.state === "ringing" || call.state === "connecting") setView("waiting");
          break;
        case "joined":
          iceServers = msg.iceServers || [];
          status(""); setView("call"); startMedia();
          break;
        case "answer":
          if (call.pc) call.pc.setRemoteDescription({ type: "answer", sdp: msg.sdp }).catch(function (e) { problem(String(e)); });
          break;
        case "bye":
          if (msg.reason === "signed_in_elsewhere" || msg.reason === "device_removed") { finished = true; stopWaiting(vdx.t("p2p." + msg.reason)); break; }
          $("ended-text").textContent = vdx.t("p2p.callEnded");
          break;
        case "error":
          call.lastError = msg.code;
          if (["bad_credentials", "signin_wait", "unavailable"].indexOf(msg.code) >= 0) {
            finished = true;
            stopWaiting(vdx.t("p2p." + msg.code, { seconds: msg.retryAfter || "" }));
          } else if (msg.code === "call_gone") {
            setView("waiting");
          } else {
            problem(msg.message || msg.code);
          }
          break;
      }
    };
    ws.onclose = function () {
      if (call.ws !== ws) return;
      stopMedia();
      if (finished || !wantWait) return;
      if (call.state === "call") $("ended-text").textContent = vdx.t("p2p.callEnded");
      status(vdx.t("p2p.connecting"));
      // after a call, or a drop: sign in again and wait on
      retryTimer = setTimeout(function () { status(""); if (wantWait) connect(); }, 1000);
    };
  }

  async function startMedia() {
    stopMedia();
    var pc = new RTCPeerConnection({ iceServers: iceServers });
    call.pc = pc;
    var remote = new MediaStream();
    $("remote").srcObject = remote;
    pc.ontrack = function (ev) { remote.addTrack(ev.track); $("remote").play().catch(function () {}); };
    var a = local && local.getAudioTracks()[0], v = local && local.getVideoTracks()[0];
    if (a) pc.addTrack(a, local); else pc.addTransceiver("audio", { direction: "sendrecv" });
    if (v) pc.addTrack(v, local); else pc.addTransceiver("video", { direction: "sendrecv" });
    await vdx.offerGathered(pc);
    if (call.pc === pc) send({ type: "offer", sdp: pc.localDescription.sdp });
  }
  function stopMedia() {
    if (call.pc) { try { call.pc.close(); } catch (e) { /* closed already */ } }
    call.pc = null;
  }
  function stopWaiting(text) {
    wantWait = false; clearTimeout(retryTimer);
    var ws = call.ws; call.ws = null;
    if (ws) ws.close();
    stopMedia();
    secret = null; $("secret").value = "";
    setView("signin"); $("signin-button").disabled = false;
    problem(text || "");
  }

  $("signin-form").addEventListener("submit", async function (ev) {
    ev.preventDefault();
    var name = $("device").value.trim(), key = $("secret").value;
    if (!name || !key) { problem(vdx.t("p2p.required")); return; }
    problem(""); $("signin-button").disabled = true;
    device = name; secret = key; wantWait = true; call.lastError = null;
    await startCamera();
    connect();
  });
  $("answer").addEventListener("click", function () {
    if (!call.callId) return;
    send({ type: "answer", callId: call.callId }); call.state = "connecting"; status(vdx.t("p2p.connecting"));
  });
  $("decline").addEventListener("click", function () {
    if (!call.callId) return;
    send({ type: "decline", callId: call.callId }); call.callId = null; setView("waiting");
  });
  $("hangup").addEventListener("click", function () { send({ type: "leave" }); });
  $("mute").addEventListener("click", function () {
    var muted = $("mute").getAttribute("aria-pressed") !== "true";
    $("mute").setAttribute("aria-pressed", String(muted));
    $("mute").textContent = vdx.t(muted ? "call.unmute" : "call.mute");
    if (local) local.getAudioTracks().forEach(function (t) { t.enabled = !muted; });
    send({ type: "mute", muted: muted });
  });
  $("signout").addEventListener("click", function () { stopWaiting(""); });

  vdx.loadTexts().catch(function () { /* English from the markup */ });
})();
