// The steering group's page: peak HD units per day against capacity, the busiest hours, the
// projection, refused joins per day, usage per organisation and sector, from
// GET /v2/steering/figures; charts drawn here as SVG, the same figures as tables, and each table
// as CSV from /v2/steering/figures.csv (fetched with the token, saved through a blob link).
"use strict";
(function () {
  var $ = function (id) { return document.getElementById(id); };
  var NS = "http://www.w3.org/2000/svg";
  var PALETTE = ["#0b5cad", "#a4161a", "#1b6e2d", "#8a5300", "#5a2ca0", "#006d75", "#7a1f5c", "#3b4552"];
  window.vdxSteer = { ready: false, figures: null, csv: {} };

  function failure(text) { vdx.message($("failure"), "error", text); }
  function el(tag, text, attrs) {
    var e = document.createElement(tag);
    if (text !== undefined && text !== null) e.textContent = text;
    Object.keys(attrs || {}).forEach(function (k) { e.setAttribute(k, attrs[k]); });
    return e;
  }
  function num(v) { return (Math.round(v * 100) / 100).toLocaleString(vdx.lang === "da" ? "da-DK" : "en-GB"); }
  function reason(code) { var k = "steer.reason." + code, t = vdx.t(k); return t === k ? code : t; }
  function yesNo(v) { return vdx.t(v ? "steer.yes" : "steer.no"); }

  // ---- tables ---------------------------------------------------------------------------------
  function table(container, caption, heads, rows) {
    var t = el("table"), cap = el("caption", caption); cap.className = "sr-only"; t.appendChild(cap);
    var tr = el("tr"); heads.forEach(function (k) { tr.appendChild(el("th", vdx.t(k), { scope: "col" })); });
    var thead = el("thead"); thead.appendChild(tr); t.appendChild(thead);
    var tbody = el("tbody");
    rows.forEach(function (r) { var row = el("tr"); r.forEach(function (v) { row.appendChild(el("td", String(v))); }); tbody.appendChild(row); });
    t.appendChild(tbody);
    var box = $(container); box.innerHTML = "";
    if (rows.length) box.appendChild(t); else box.appendChild(el("p", vdx.t("steer.none"), { class: "hint" }));
  }

  // ---- charts (inline SVG; role=img named by the figure's caption; the tables say it all) -----
  function svg(captionId, w, h) {
    var s = document.createElementNS(NS, "svg");
    s.setAttribute("viewBox", "0 0 " + w + " " + h); s.setAttribute("role", "img");
    s.setAttribute("aria-labelledby", captionId); s.setAttribute("width", "100%");
    s.add = function (tag, attrs, text) {
      var e = document.createElementNS(NS, tag);
      Object.keys(attrs).forEach(function (k) { e.setAttribute(k, attrs[k]); });
      if (text !== undefined) e.textContent = text;
      s.appendChild(e); return e;
    };
    return s;
  }
  function tip(node, text) { var t = document.createElementNS(NS, "title"); t.textContent = text; node.appendChild(t); }
  function axes(s, W, H, left, bottom, top, max, first, last) {
    s.add("line", { x1: left, y1: top, x2: left, y2: H - bottom, stroke: "#4a5360" });
    s.add("line", { x1: left, y1: H - bottom, x2: W, y2: H - bottom, stroke: "#4a5360" });
    s.add("text", { x: left - 4, y: top + 10, "text-anchor": "end", "font-size": 11, fill: "#1b1f24" }, num(max));
    s.add("text", { x: left - 4, y: H - bottom, "text-anchor": "end", "font-size": 11, fill: "#1b1f24" }, "0");
    if (first) s.add("text", { x: left + 2, y: H - 6, "text-anchor": "start", "font-size": 11, fill: "#1b1f24" }, first);
    if (last) s.add("text", { x: W - 2, y: H - 6, "text-anchor": "end", "font-size": 11, fill: "#1b1f24" }, last);
  }
  function legend(container, items) {
    var p = el("p", ""); p.className = "hint";
    items.forEach(function (it) { var m = el("span", it.mark + " ", { "aria-hidden": "true" }); m.style.color = it.colour; p.appendChild(m); p.appendChild(document.createTextNode(it.label + "   ")); });
    container.appendChild(p);
  }
  function dayList(f) {
    var out = [], d = new Date(f.from + "T00:00:00Z"), end = new Date(f.to + "T00:00:00Z");
    while (d <= end) { out.push(d.toISOString().slice(0, 10)); d.setUTCDate(d.getUTCDate() + 1); }
    return out;
  }

  function peakChart(f) {
    var W = 720, H = 220, left = 40, bottom = 22, top = 10;
    var days = dayList(f), byDay = {};
    f.days.forEach(function (d) { byDay[d.day] = d; });
    var max = Math.max(1, Math.max.apply(null, f.days.map(function (d) { return Math.max(d.peakUnits, d.capacity); }).concat([0])));
    var s = svg("chart-peak-cap", W, H), bw = (W - left - 4) / days.length, y = function (v) { return H - bottom - (H - bottom - top) * v / max; };
    axes(s, W, H, left, bottom, top, max, days[0].slice(5), days[days.length - 1].slice(5));
    var line = [];
    days.forEach(function (day, i) {
      var d = byDay[day]; if (!d) return;
      var r = s.add("rect", { x: left + 2 + i * bw, y: y(d.peakUnits), width: Math.max(1, bw - 2), height: H - bottom - y(d.peakUnits), fill: PALETTE[0] });
      tip(r, vdx.t("steer.tipPeak", { day: day, peak: num(d.peakUnits), capacity: num(d.capacity) }));
      // a step per day: the capacity across the day's slot, so one day alone shows it too
      line.push((left + 2 + i * bw) + "," + y(d.capacity), (left + 2 + (i + 1) * bw - 2) + "," + y(d.capacity));
    });
    if (line.length) s.add("polyline", { points: line.join(" "), fill: "none", stroke: PALETTE[1], "stroke-width": 2 });
    var c = $("chart-peak"); c.innerHTML = ""; c.appendChild(s);
    legend(c, [{ mark: "■", colour: PALETTE[0], label: vdx.t("steer.legendPeak") }, { mark: "—", colour: PALETTE[1], label: vdx.t("steer.legendCapacity") }]);
  }

  function refusedChart(f) {
    var W = 720, H = 200, left = 40, bottom = 22, top = 10;
    var days = dayList(f), reasons = [], per = {};
    f.refused.forEach(function (r) {
      if (reasons.indexOf(r.reason) < 0) reasons.push(r.reason);
      var d = per[r.day] = per[r.day] || {}; d[r.reason] = (d[r.reason] || 0) + r.count;
    });
    var totals = days.map(function (d) { return reasons.reduce(function (a, r) { return a + ((per[d] || {})[r] || 0); }, 0); });
    var max = Math.max(1, Math.max.apply(null, totals));
    var s = svg("chart-refused-cap", W, H), bw = (W - left - 4) / days.length;
    axes(s, W, H, left, bottom, top, max, days[0].slice(5), days[days.length - 1].slice(5));
    days.forEach(function (day, i) {
      var base = H - bottom;
      reasons.forEach(function (r, k) {
        var v = (per[day] || {})[r] || 0; if (!v) return;
        var h = (H - bottom - top) * v / max; base -= h;
        var rect = s.add("rect", { x: left + 2 + i * bw, y: base, width: Math.max(1, bw - 2), height: h, fill: PALETTE[k % PALETTE.length] });
        tip(rect, day + " " + reason(r) + ": " + v);
      });
    });
    var c = $("chart-refused"); c.innerHTML = ""; c.appendChild(s);
    legend(c, reasons.map(function (r, k) { return { mark: "■", colour: PALETTE[k % PALETTE.length], label: reason(r) }; }));
  }

  function sectorChart(f) {
    var rows = f.sectors, W = 720, bar = 22, left = 180, H = Math.max(1, rows.length) * (bar + 8) + 10;
    var max = Math.max(1, Math.max.apply(null, rows.map(function (r) { return r.participantMinutes; }).concat([0])));
    var s = svg("chart-sectors-cap", W, H);
    rows.forEach(function (r, i) {
      var yy = 5 + i * (bar + 8), w = (W - left - 60) * r.participantMinutes / max;
      s.add("text", { x: left - 6, y: yy + bar * 0.7, "text-anchor": "end", "font-size": 12, fill: "#1b1f24" }, r.sector);
      var rect = s.add("rect", { x: left, y: yy, width: Math.max(1, w), height: bar, fill: PALETTE[(i + 2) % PALETTE.length] });
      tip(rect, r.sector + ": " + r.participantMinutes);
      s.add("text", { x: left + Math.max(1, w) + 4, y: yy + bar * 0.7, "font-size": 12, fill: "#1b1f24" }, String(r.participantMinutes));
    });
    var c = $("chart-sectors"); c.innerHTML = ""; c.appendChild(s);
  }

  function texts(f) {
    $("busiest").textContent = f.busiestHours.length
      ? vdx.t("steer.busiest", { hours: f.busiestHours.map(function (h) { return String(h.hour).padStart(2, "0") + ":00 (" + num(h.meanUnits) + ")"; }).join(", ") })
      : vdx.t("steer.noLoad");
    var p = f.projection;
    if (p.growthPerDay === null) $("projection").textContent = vdx.t("steer.projectionNone");
    else if (p.exceedsOn) $("projection").textContent = vdx.t("steer.projectionOn", { growth: num(p.growthPerDay), capacity: num(p.capacity), day: p.exceedsOn });
    else $("projection").textContent = vdx.t("steer.projectionNever", { growth: num(p.growthPerDay), capacity: num(p.capacity) });
  }

  function tables(f) {
    table("table-days", vdx.t("steer.capacity"), ["steer.colDay", "steer.colPeak", "steer.colCapacity", "steer.colPeakAt", "steer.colBusiestHour"],
      f.days.map(function (d) { return [d.day, d.peakUnits, d.capacity, d.peakAt, d.busiestHour]; }));
    table("table-busiest", vdx.t("steer.busiestTable"), ["steer.colHour", "steer.colMeanUnits"],
      f.busiestHours.map(function (h) { return [h.hour, h.meanUnits]; }));
    table("table-refused", vdx.t("steer.refused"), ["steer.colDay", "steer.colReason", "steer.colOrg", "steer.colClinical", "steer.colCount"],
      f.refused.map(function (r) { return [r.day, reason(r.reason), r.organisation, yesNo(r.clinical), r.count]; }));
    var usage = ["steer.colMeetings", "steer.colParticipantMinutes", "steer.colPeakParticipants"];
    table("table-sectors", vdx.t("steer.bySector"), ["steer.colSector"].concat(usage),
      f.sectors.map(function (r) { return [r.sector, r.meetings, r.participantMinutes, r.peakParticipants]; }));
    table("table-clinical", vdx.t("steer.byClinical"), ["steer.colClinical"].concat(usage),
      f.clinical.map(function (r) { return [yesNo(r.clinical), r.meetings, r.participantMinutes, r.peakParticipants]; }));
    table("table-organisations", vdx.t("steer.byOrganisation"), ["steer.colOrg", "steer.colName", "steer.colSector", "steer.colClinical"].concat(usage),
      f.organisations.map(function (r) { return [r.organisation, r.name, r.sector, yesNo(r.clinical), r.meetings, r.participantMinutes, r.peakParticipants]; }));
  }

  function period() {
    var q = new URLSearchParams(), from = $("period-from").value, to = $("period-to").value;
    if (from) q.set("from", from);
    if (to) q.set("to", to);
    return q;
  }
  async function load() {
    var f;
    try { f = await vdx.api("GET", vdx.config.apiBase + "/steering/figures?" + period().toString()); }
    catch (e) { failure(e.status === 403 ? vdx.t("steer.needAdmin") : e.message); return; }
    vdx.message($("failure"), "error", "");
    if (!$("period-from").value) $("period-from").value = f.from;
    if (!$("period-to").value) $("period-to").value = f.to;
    peakChart(f); refusedChart(f); sectorChart(f); texts(f); tables(f);
    $("period-status").textContent = vdx.t("steer.shown", { from: f.from, to: f.to });
    window.vdxSteer.figures = f;
  }
  async function downloadCsv(name) {
    var q = period(); q.set("table", name);
    var res = await fetch(vdx.config.apiBase + "/steering/figures.csv?" + q.toString(), { headers: { Authorization: "Bearer " + vdx.token() } });
    if (!res.ok) { failure(vdx.t("steer.csvFailed", { status: res.status })); return; }
    var text = await res.text();
    window.vdxSteer.csv[name] = text;
    var a = el("a", "", { download: "vdx-" + name + ".csv" });
    a.href = URL.createObjectURL(new Blob([text], { type: "text/csv" }));
    document.body.appendChild(a); a.click(); a.remove();
    setTimeout(function () { URL.revokeObjectURL(a.href); }, 10000);
  }

  function showApp() {
    var c = vdx.claims();
    $("signin").hidden = true; $("app").hidden = false; $("sign-out").hidden = false;
    $("who").textContent = c.email || "";
    load();
  }
  (async function () {
    await vdx.loadTexts();
    try { await vdx.initAuth(); } catch (e) { failure(String(e.message || e)); }
    $("sign-out").addEventListener("click", vdx.signOut);
    $("period-form").addEventListener("submit", function (ev) { ev.preventDefault(); load(); });
    document.querySelectorAll("[data-csv]").forEach(function (b) {
      b.addEventListener("click", function () { downloadCsv(b.getAttribute("data-csv")); });
    });
    window.vdxSteer.refresh = load;
    if (vdx.token()) showApp();
    else { $("signin").hidden = false; vdx.wireSignIn(showApp); }
    window.vdxSteer.ready = true;
  })();
})();
