// Operator dashboard: live conferences and participants (protocol, codec, resolution, bitrate,
// packet loss) from the conference control API, with mute, disconnect, lock; capacity in use;
// usage per organisation per day as hand-drawn SVG charts. Polls every 2 s. The audit trail of
// the operator's organisation tree (GET /v2/audit), paged, loaded when asked.
"use strict";
(function () {
  var $ = function (id) { return document.getElementById(id); };
  var prevBytes = {};  // participantId -> {t, bytes}
  var timer = null;
  var PALETTE = ["#0b5cad", "#a4161a", "#1b6e2d", "#8a5300", "#5a2ca0", "#006d75", "#7a1f5c", "#3b4552"];
  window.vdxDash = { polls: 0, rates: {} };

  function failure(text) { vdx.message($("failure"), "error", text); }
  function notice(text) { vdx.message($("notice"), "ok", text); }
  function el(tag, text, attrs) {
    var e = document.createElement(tag);
    if (text !== undefined && text !== null) e.textContent = text;
    Object.keys(attrs || {}).forEach(function (k) { e.setAttribute(k, attrs[k]); });
    return e;
  }
  function control(path) { return vdx.config.nodeBase + "/conferences/" + encodeURIComponent(path.alias) + (path.rest || ""); }
  async function act(alias, rest, done) {
    try { await vdx.api("POST", control({ alias: alias, rest: rest })); notice(done); await poll(); }
    catch (e) { failure(e.message); }
  }
  // Call a SIP address into the room, as a guest; how it goes shows in the card (dialOuts).
  async function dial(alias) {
    var to = (window.prompt(vdx.t("dash.dialPrompt", { alias: alias })) || "").trim();
    if (!to) return;
    if (!/^sips?:/i.test(to)) to = "sip:" + to;
    try {
      await vdx.api("POST", control({ alias: alias, rest: "/participants/dial" }), { destination: to, role: "guest" });
      notice(vdx.t("dial.calling", { destination: to.replace(/^sips?:/, "") })); await poll();
    } catch (e) { failure(vdx.t("dial.refused", { detail: e.message })); }
  }
  function button(label, aria, cls, fn) {
    var b = el("button", label, { type: "button", "aria-label": aria }); b.className = cls || "secondary";
    b.addEventListener("click", fn); return b;
  }

  function rate(key, bytes, now) {
    var prev = prevBytes[key], kbps = null;
    if (prev && now > prev.t && bytes >= prev.bytes) kbps = Math.round((bytes - prev.bytes) * 8 / (now - prev.t));
    prevBytes[key] = { t: now, bytes: bytes };
    return kbps;
  }
  function lossText(lost, total) { return total > 0 ? (100 * lost / total).toFixed(1) + " %" : "–"; }
  // Bitrate and loss both ways: "to them" is what the node sends (loss from their receiver
  // reports), "from them" is what they send (loss from the node's own counters).
  function mediaStats(p) {
    var m = p.media || {}, now = performance.now();
    var out = rate(p.participantId + "/out", (m.videoBytesSent || 0) + (m.audioBytesSent || 0), now);
    var inn = rate(p.participantId + "/in", m.bytesReceived || 0, now);
    var got = (m.videoPacketsReceived || 0) + (m.audioPacketsReceived || 0);
    var lostIn = Math.max(0, (m.videoPacketsLost || 0) + (m.audioPacketsLost || 0));
    var sent = (m.videoRtpPacketsSent || m.videoPacketsSent || 0) + (m.audioRtpPacketsSent || m.audioPacketsSent || 0);
    var lostOut = Math.max(0, (m.videoRemotePacketsLost || 0) + (m.audioRemotePacketsLost || 0));
    return { kbpsOut: out, kbpsIn: inn, lossOut: lossText(lostOut, sent), lossIn: lossText(lostIn, got + lostIn) };
  }
  function kbit(v) { return v === null ? "…" : v + " kbit/s"; }
  function mediaCells(p) {
    var m = p.media || {}, s = mediaStats(p);
    window.vdxDash.rates[p.participantId] = s;
    var res = m.videoWidth ? m.videoWidth + "×" + m.videoHeight : "–";
    return [p.protocol || "–", m.videoCodec || "–", res, kbit(s.kbpsOut), kbit(s.kbpsIn), s.lossOut, s.lossIn];
  }

  function renderConference(c) {
    var box = el("div"); box.className = "card"; box.dataset.alias = c.alias;
    var h = el("h3", c.alias); box.appendChild(h);
    var meta = el("p", vdx.t("dash.participants", { n: c.participants.length }) + " · " + (c.locked ? vdx.t("dash.locked") : vdx.t("dash.unlocked")));
    meta.className = "hint"; box.appendChild(meta);
    var acts = el("div"); acts.className = "actions";
    acts.appendChild(c.locked
      ? button(vdx.t("dash.unlock"), vdx.t("dash.unlock") + ": " + c.alias, "secondary", function () { act(c.alias, "/unlock", vdx.t("dash.didUnlock")); })
      : button(vdx.t("dash.lock"), vdx.t("dash.lock") + ": " + c.alias, "secondary", function () { act(c.alias, "/lock", vdx.t("dash.didLock")); }));
    acts.appendChild(button(vdx.t("dash.dial"), vdx.t("dash.dial") + ": " + c.alias, "secondary", function () { dial(c.alias); }));
    acts.appendChild(button(vdx.t("dash.end"), vdx.t("dash.end") + ": " + c.alias, "danger", function () { act(c.alias, "/disconnect", vdx.t("dash.didEnd")); }));
    box.appendChild(acts);
    (c.dialOuts || []).forEach(function (d) {
      var line = el("p", vdx.t("dial." + d.state, { destination: String(d.destination).replace(/^sips?:/, ""), detail: d.detail || "" }));
      line.className = "hint"; line.dataset.dial = d.participantId; box.appendChild(line);
    });
    var table = el("table");
    var head = el("tr");
    ["dash.colName", "dash.colRole", "dash.colProtocol", "dash.colCodec", "dash.colResolution", "dash.colBitrateOut", "dash.colBitrateIn", "dash.colLossOut", "dash.colLossIn", "dash.colActions"].forEach(function (k) { head.appendChild(el("th", vdx.t(k), { scope: "col" })); });
    var thead = el("thead"); thead.appendChild(head); table.appendChild(thead);
    var tbody = el("tbody");
    c.participants.forEach(function (p) {
      var tr = el("tr"); tr.dataset.participant = p.participantId;
      var name = el("td", p.displayName || "–");
      if (p.state === "lobby") name.appendChild(el("span", " (" + vdx.t("dash.inLobby") + ")"));
      if (p.muted) { name.appendChild(document.createTextNode(" ")); var mb = el("span", vdx.t("dash.muted")); mb.className = "badge"; name.appendChild(mb); }
      tr.appendChild(name);
      tr.appendChild(el("td", vdx.t("dash.role." + p.role)));
      mediaCells(p).forEach(function (v) { tr.appendChild(el("td", v)); });
      var a = el("td"); var box2 = el("div"); box2.className = "actions";
      var who = (p.displayName || p.participantId);
      box2.appendChild(p.muted
        ? button(vdx.t("dash.unmute"), vdx.t("dash.unmute") + ": " + who, "secondary", function () { act(c.alias, "/participants/" + p.participantId + "/unmute", vdx.t("dash.done")); })
        : button(vdx.t("dash.mute"), vdx.t("dash.mute") + ": " + who, "secondary", function () { act(c.alias, "/participants/" + p.participantId + "/mute", vdx.t("dash.done")); }));
      if (p.state === "lobby") box2.appendChild(button(vdx.t("dash.admit"), vdx.t("dash.admit") + ": " + who, "secondary", function () { act(c.alias, "/participants/" + p.participantId + "/admit", vdx.t("dash.done")); }));
      box2.appendChild(button(vdx.t("dash.disconnect"), vdx.t("dash.disconnect") + ": " + who, "danger", function () { act(c.alias, "/participants/" + p.participantId + "/disconnect", vdx.t("dash.done")); }));
      a.appendChild(box2); tr.appendChild(a);
      tbody.appendChild(tr);
    });
    table.appendChild(tbody); box.appendChild(table);
    return box;
  }

  async function poll() {
    var list = await vdx.api("GET", vdx.config.nodeBase + "/conferences");
    var details = await Promise.all(list.map(function (c) { return vdx.api("GET", control({ alias: c.alias })).catch(function () { return null; }); }));
    var box = $("conferences"); box.innerHTML = "";
    details = details.filter(Boolean);
    if (!details.length) box.appendChild(el("p", vdx.t("dash.noneLive"), { class: "hint" }));
    details.forEach(function (c) { box.appendChild(renderConference(c)); });
    window.vdxDash.conferences = details;
    window.vdxDash.polls += 1;
  }

  // ---- usage charts (inline SVG, stacked bars per organisation) ---------------------------
  function chart(container, captionId, days, series, field) {
    var W = 320, H = 170, left = 36, bottom = 22, top = 8;
    var orgs = Object.keys(series);
    var totals = days.map(function (d) { return orgs.reduce(function (s, o) { return s + ((series[o][d] || {})[field] || 0); }, 0); });
    var max = Math.max(1, Math.max.apply(null, totals));
    var bw = (W - left - 4) / days.length;
    var ns = "http://www.w3.org/2000/svg";
    var svg = document.createElementNS(ns, "svg");
    svg.setAttribute("viewBox", "0 0 " + W + " " + H); svg.setAttribute("role", "img");
    svg.setAttribute("aria-labelledby", captionId); svg.setAttribute("width", "100%");
    function add(tag, attrs, text) { var e = document.createElementNS(ns, tag); Object.keys(attrs).forEach(function (k) { e.setAttribute(k, attrs[k]); }); if (text !== undefined) e.textContent = text; svg.appendChild(e); return e; }
    add("line", { x1: left, y1: top, x2: left, y2: H - bottom, stroke: "#4a5360" });
    add("line", { x1: left, y1: H - bottom, x2: W, y2: H - bottom, stroke: "#4a5360" });
    add("text", { x: left - 4, y: top + 10, "text-anchor": "end", "font-size": 10, fill: "#1b1f24" }, String(max));
    add("text", { x: left - 4, y: H - bottom, "text-anchor": "end", "font-size": 10, fill: "#1b1f24" }, "0");
    days.forEach(function (d, i) {
      var y = H - bottom;
      orgs.forEach(function (o, k) {
        var v = (series[o][d] || {})[field] || 0;
        if (!v) return;
        var h = (H - bottom - top) * v / max;
        y -= h;
        var r = add("rect", { x: left + 2 + i * bw, y: y, width: Math.max(1, bw - 2), height: h, fill: PALETTE[k % PALETTE.length] });
        var t = document.createElementNS(ns, "title"); t.textContent = o + " " + d + ": " + v; r.appendChild(t);
      });
      if (i === 0 || i === days.length - 1) add("text", { x: left + 2 + i * bw + bw / 2, y: H - 6, "text-anchor": i === 0 ? "start" : "end", "font-size": 10, fill: "#1b1f24" }, d.slice(5));
    });
    var c = $(container); c.innerHTML = ""; c.appendChild(svg);
    var legend = el("p", ""); legend.className = "hint";
    orgs.forEach(function (o, k) { var s = el("span", "■ ", { "aria-hidden": "true" }); s.style.color = PALETTE[k % PALETTE.length]; legend.appendChild(s); legend.appendChild(document.createTextNode(o + "  ")); });
    c.appendChild(legend);
  }
  async function usage() {
    var u = await vdx.api("GET", "/web/usage?days=14");
    $("capacity").textContent = vdx.t("dash.capacityText", { c: u.capacity.conferences, p: u.capacity.participants });
    var series = {};
    u.usage.forEach(function (r) { (series[r.organisation] = series[r.organisation] || {})[r.day] = r; });
    chart("chart-meetings", "chart-meetings-cap", u.days, series, "meetings");
    chart("chart-minutes", "chart-minutes-cap", u.days, series, "minutes");
    chart("chart-participants", "chart-participants-cap", u.days, series, "participants");
    chart("chart-participant-minutes", "chart-participant-minutes-cap", u.days, series, "participantMinutes");
    var table = el("table"), head = el("tr");
    ["dash.colOrg", "dash.colDay", "dash.colMeetings", "dash.colMinutes", "dash.colParticipants", "dash.colParticipantMinutes"].forEach(function (k) { head.appendChild(el("th", vdx.t(k), { scope: "col" })); });
    var thead = el("thead"); thead.appendChild(head); table.appendChild(thead);
    var tbody = el("tbody");
    u.usage.forEach(function (r) { var tr = el("tr"); [r.organisation, r.day, r.meetings, r.minutes, r.participants, r.participantMinutes].forEach(function (v) { tr.appendChild(el("td", String(v))); }); tbody.appendChild(tr); });
    table.appendChild(tbody);
    $("usage-table").innerHTML = ""; $("usage-table").appendChild(table);
    window.vdxDash.usage = u;
  }

  // ---- audit trail (not polled: it pages, and a page must not move under the reader) -------
  var AUDIT_SIZE = 20;
  var auditPage = 0;
  function auditParams() {
    var q = new URLSearchParams({ page: auditPage, size: AUDIT_SIZE });
    var from = $("audit-from").value, to = $("audit-to").value, meeting = $("audit-meeting").value.trim();
    if (from) q.set("from", from + "T00:00:00Z");
    if (to) { var d = new Date(to + "T00:00:00Z"); d.setUTCDate(d.getUTCDate() + 1); q.set("to", d.toISOString().slice(0, 19) + "Z"); }
    if (meeting) q.set("meeting", meeting);
    return q.toString();
  }
  // one readable word on what was touched: whom a host acted on, the layout, the subject, the name
  function auditWhat(e) {
    var d = e.data || {};
    if (e.resource === "conference") return d.displayName || d.hostView || "";
    if (e.resource === "meeting") return d.subject || "";
    if (e.resource === "organisation") return d.name || "";
    return "";
  }
  async function audit() {
    var body;
    try { body = await vdx.api("GET", vdx.config.apiBase + "/audit?" + auditParams()); }
    catch (e) { failure(e.message); return; }
    var table = el("table"), caption = el("caption", vdx.t("dash.audit")); caption.className = "sr-only";
    table.appendChild(caption);
    var head = el("tr");
    ["dash.colTime", "dash.colUser", "dash.colOrg", "dash.colResource", "dash.colOperation", "dash.colIdentifier", "dash.colDetail"].forEach(function (k) { head.appendChild(el("th", vdx.t(k), { scope: "col" })); });
    var thead = el("thead"); thead.appendChild(head); table.appendChild(thead);
    var tbody = el("tbody");
    body.entries.forEach(function (e) {
      var tr = el("tr"); tr.dataset.audit = e.id;
      [vdx.fmtTime(e.time), e.user || "–", e.organisationCode || "–", e.resource, e.operation, e.identifier || "–", auditWhat(e)].forEach(function (v) { tr.appendChild(el("td", String(v))); });
      tbody.appendChild(tr);
    });
    table.appendChild(tbody);
    $("audit-table").innerHTML = "";
    if (body.entries.length) $("audit-table").appendChild(table);
    var first = body.total ? auditPage * AUDIT_SIZE + 1 : 0, last = auditPage * AUDIT_SIZE + body.entries.length;
    $("audit-status").textContent = body.total ? vdx.t("dash.auditStatus", { first: first, last: last, total: body.total }) : vdx.t("dash.auditNone");
    $("audit-prev").disabled = auditPage === 0;
    $("audit-next").disabled = last >= body.total;
    window.vdxDash.audit = body;
  }
  function wireAudit() {
    $("audit-form").addEventListener("submit", function (ev) { ev.preventDefault(); auditPage = 0; audit(); });
    $("audit-prev").addEventListener("click", function () { if (auditPage > 0) { auditPage -= 1; audit(); } });
    $("audit-next").addEventListener("click", function () { auditPage += 1; audit(); });
  }

  async function tick() {
    try { await Promise.all([poll(), usage()]); }
    catch (e) { failure(e.status === 403 ? vdx.t("dash.needAdmin") : e.message); }
  }
  function showApp() {
    var c = vdx.claims();
    $("signin").hidden = true; $("app").hidden = false; $("sign-out").hidden = false;
    $("who").textContent = c.email || "";
    tick();
    audit();
    clearInterval(timer); timer = setInterval(tick, 2000);
  }
  (async function () {
    await vdx.loadTexts();
    try { await vdx.initAuth(); } catch (e) { failure(String(e.message || e)); }
    $("sign-out").addEventListener("click", vdx.signOut);
    window.vdxDash.refresh = tick;
    window.vdxDash.refreshAudit = audit;
    wireAudit();
    if (vdx.token()) showApp();
    else { $("signin").hidden = false; vdx.wireSignIn(showApp); }
    window.vdxDash.ready = true;
  })();
})();
