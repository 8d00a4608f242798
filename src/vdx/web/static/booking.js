// Booking pages for staff: today's meetings and my meetings (status, live participants), create,
// edit, cancel, copy the link, start as host, invite by SMS or e-mail. Everything goes through the
// VDX API v2 with the signed-in user's bearer token, as an integration would.
"use strict";
(function () {
  var $ = function (id) { return document.getElementById(id); };
  var api = null;
  var cache = {};   // uuid -> {meeting, si}
  var timer = null;
  window.vdxBooking = { loaded: 0 };

  function notice(text) { vdx.message($("notice"), "ok", text); }
  function failure(text) { vdx.message($("failure"), "error", text); }
  function pad(n) { return (n < 10 ? "0" : "") + n; }
  function localDate(d) { return d.getFullYear() + "-" + pad(d.getMonth() + 1) + "-" + pad(d.getDate()); }
  function localTime(d) { return pad(d.getHours()) + ":" + pad(d.getMinutes()); }
  function fromInputs(date, time) { return new Date(date + "T" + time); }

  function resetForm() {
    var start = new Date(Date.now() + 5 * 60000); start.setSeconds(0, 0);
    var end = new Date(start.getTime() + 30 * 60000);
    $("m-uuid").value = ""; $("m-subject").value = ""; $("m-description").value = ""; $("m-organizer").value = "";
    $("m-date").value = localDate(start); $("m-start").value = localTime(start); $("m-end").value = localTime(end);
    $("m-mic").value = "on"; $("m-max").value = "0"; $("m-pinreq").checked = false;
    ["m-mic", "m-max", "m-pinreq"].forEach(function (id) { $(id).disabled = false; });
    $("form-h").textContent = vdx.t("booking.new"); $("m-save").textContent = vdx.t("booking.create");
    $("m-cancel-edit").hidden = true;
  }

  async function save(ev) {
    ev.preventDefault();
    failure("");
    var subject = $("m-subject").value.trim();
    if (!subject) { $("m-subject").setAttribute("aria-invalid", "true"); failure(vdx.t("booking.subjectRequired")); $("m-subject").focus(); return; }
    $("m-subject").removeAttribute("aria-invalid");
    var start = fromInputs($("m-date").value, $("m-start").value), end = fromInputs($("m-date").value, $("m-end").value);
    // An end time before the start on the same date is a meeting across midnight (23:40-00:10),
    // as long as that makes it shorter than half a day; otherwise it is a mistake.
    if (end <= start && end.getTime() + 86400000 - start.getTime() < 12 * 3600000) end = new Date(end.getTime() + 86400000);
    if (!(end > start)) { failure(vdx.t("booking.endBeforeStart")); $("m-end").focus(); return; }
    var body = { subject: subject, startTime: start.toISOString(), endTime: end.toISOString(), description: $("m-description").value.trim() || null };
    if ($("m-organizer").value.trim()) body.organizedByEmail = $("m-organizer").value.trim();
    var uuid = $("m-uuid").value;
    try {
      if (uuid) {
        await api("PATCH", vdx.config.apiBase + "/meetings/" + uuid, body);
        notice(vdx.t("booking.saved", { subject: subject }));
      } else {
        body.guestMicrophone = $("m-mic").value;
        body.maxParticipants = parseInt($("m-max").value || "0", 10);
        body.guestPinRequired = $("m-pinreq").checked;
        await api("POST", vdx.config.apiBase + "/meetings", body);
        notice(vdx.t("booking.created", { subject: subject }));
      }
      resetForm();
      await refresh();
    } catch (e) { failure(vdx.t("booking.failed") + " " + e.message); }
  }

  function edit(uuid) {
    var m = cache[uuid].meeting, s = new Date(m.startTime), e = new Date(m.endTime);
    $("m-uuid").value = uuid; $("m-subject").value = m.subject; $("m-description").value = m.description || "";
    $("m-organizer").value = m.organizedBy && m.organizedBy.email || "";
    $("m-date").value = localDate(s); $("m-start").value = localTime(s); $("m-end").value = localTime(e);
    ["m-mic", "m-max", "m-pinreq"].forEach(function (id) { $(id).disabled = true; });
    $("form-h").textContent = vdx.t("booking.edit", { subject: m.subject }); $("m-save").textContent = vdx.t("booking.save");
    $("m-cancel-edit").hidden = false;
    $("m-subject").focus();
  }

  async function cancelMeeting(uuid) {
    var m = cache[uuid].meeting;
    if (!confirm(vdx.t("booking.confirmCancel", { subject: m.subject }))) return;
    try { await api("DELETE", vdx.config.apiBase + "/meetings/" + uuid); notice(vdx.t("booking.cancelled", { subject: m.subject })); await refresh(); }
    catch (e) { failure(vdx.t("booking.failed") + " " + e.message); }
  }

  function citizenLink(uuid) { var c = cache[uuid]; return c.meeting.shortLink || (c.si && c.si.portalLink) || ""; }
  function hostLink(uuid) {
    var si = cache[uuid].si;
    if (!si) return "";
    var url;
    try { url = new URL(si.portalLink || (location.origin + "/join/")); } catch (e) { url = new URL(location.origin + "/join/"); }
    if (!url.searchParams.get("conference")) url.searchParams.set("conference", si.uriWithDomain);
    if (si.hostPin) url.searchParams.set("pin", String(si.hostPin));
    return url.toString();
  }
  async function copyLink(uuid) {
    var link = citizenLink(uuid);
    try { await navigator.clipboard.writeText(link); notice(vdx.t("booking.copied", { link: link })); }
    catch (e) { window.prompt(vdx.t("booking.copyManually"), link); }
  }

  function openInvite(uuid) {
    var d = $("invite");
    d.dataset.uuid = uuid;
    $("invite-subject").textContent = cache[uuid].meeting.subject;
    vdx.message($("invite-error"), "error", "");
    $("invite-to").value = "";
    d.showModal();
    $("invite-to").focus();
  }
  async function sendInvite(ev) {
    ev.preventDefault();
    var d = $("invite");
    try {
      await api("POST", "/web/invitations", { meetingUuid: d.dataset.uuid, channel: $("invite-channel").value, to: $("invite-to").value.trim(), language: vdx.lang });
      d.close();
      notice(vdx.t("invite.sent", { to: $("invite-to").value.trim() }));
    } catch (e) { vdx.message($("invite-error"), "error", e.message); }
  }

  function statusOf(m, si, live) {
    var now = Date.now();
    if (live > 0) return { text: vdx.t("status.live", { n: live }), cls: "live" };
    if (new Date(m.endTime).getTime() < now) return { text: vdx.t("status.ended"), cls: "" };
    var p = si ? si.provisionStatus : "";
    return { text: vdx.t("status." + (p || "UNKNOWN")), cls: "" };
  }

  function render(container, list, live, emptyKey) {
    var el = $(container);
    el.innerHTML = "";
    if (!list.length) { var p = document.createElement("p"); p.className = "hint"; p.textContent = vdx.t(emptyKey); el.appendChild(p); return; }
    var table = document.createElement("table");
    table.innerHTML = "<thead><tr><th scope='col'></th><th scope='col'></th><th scope='col'></th><th scope='col'></th></tr></thead><tbody></tbody>";
    ["booking.colMeeting", "booking.colTime", "booking.colStatus", "booking.colActions"].forEach(function (k, i) { table.querySelectorAll("th")[i].textContent = vdx.t(k); });
    list.forEach(function (m) {
      var si = cache[m.uuid].si, alias = si && si.uriWithDomain;
      var st = statusOf(m, si, alias ? (live[alias] || 0) : 0);
      var tr = document.createElement("tr");
      tr.dataset.uuid = m.uuid;
      var c1 = document.createElement("td"); c1.textContent = m.subject;
      if (alias) { var small = document.createElement("div"); small.className = "hint"; small.textContent = alias; c1.appendChild(small); }
      var c2 = document.createElement("td"); c2.textContent = vdx.fmtTime(m.startTime) + " – " + new Date(m.endTime).toLocaleTimeString(vdx.lang === "da" ? "da-DK" : "en-GB", { timeStyle: "short" });
      var c3 = document.createElement("td"); var b = document.createElement("span"); b.className = "badge " + st.cls; b.textContent = st.text; c3.appendChild(b);
      var c4 = document.createElement("td"); var acts = document.createElement("div"); acts.className = "actions";
      [["booking.copy", copyLink, "secondary"], ["booking.startHost", function (u) { window.open(hostLink(u), "_blank"); }, ""],
       ["booking.invite", openInvite, "secondary"], ["booking.editBtn", edit, "secondary"], ["booking.cancelBtn", cancelMeeting, "danger"]].forEach(function (a) {
        var btn = document.createElement("button"); btn.type = "button"; btn.className = a[2];
        btn.textContent = vdx.t(a[0]);
        btn.setAttribute("aria-label", vdx.t(a[0]) + ": " + m.subject);
        btn.addEventListener("click", function () { a[1](m.uuid); });
        acts.appendChild(btn);
      });
      c4.appendChild(acts);
      [c1, c2, c3, c4].forEach(function (c) { tr.appendChild(c); });
      table.querySelector("tbody").appendChild(tr);
    });
    el.appendChild(table);
  }

  async function refresh() {
    var base = vdx.config.apiBase;
    var d0 = new Date(); d0.setHours(0, 0, 0, 0);
    var d1 = new Date(d0.getTime() + 86400000);
    var email = vdx.claims().email || "";
    var today = await api("GET", base + "/meetings?from-start-time=" + encodeURIComponent(d0.toISOString()) + "&to-start-time=" + encodeURIComponent(d1.toISOString()));
    var mine = email ? await api("GET", base + "/meetings?organizedBy=" + encodeURIComponent(email)) : [];
    var all = {}; today.concat(mine).forEach(function (m) { all[m.uuid] = m; });
    await Promise.all(Object.keys(all).map(async function (uuid) {
      var m = all[uuid], si = null, href = m._links && m._links["scheduling-info"] && m._links["scheduling-info"].href;
      if (href) { try { si = await api("GET", new URL(href, location.origin).pathname); } catch (e) { si = null; } }
      cache[uuid] = { meeting: m, si: si };
    }));
    var aliases = Object.keys(cache).map(function (u) { return cache[u].si && cache[u].si.uriWithDomain; }).filter(Boolean);
    var live = aliases.length ? await api("GET", "/web/live?" + aliases.map(function (a) { return "alias=" + encodeURIComponent(a); }).join("&")) : {};
    var byStart = function (a, b) { return a.startTime < b.startTime ? -1 : 1; };
    render("today", today.sort(byStart), live, "booking.noneToday");
    render("mine", mine.sort(byStart), live, "booking.noneMine");
    window.vdxBooking.loaded += 1;
    window.vdxBooking.live = live;
  }

  function showApp() {
    var c = vdx.claims();
    $("signin").hidden = true; $("app").hidden = false; $("sign-out").hidden = false;
    $("who").textContent = (c.email || "") + (c.organisation_id ? " · " + c.organisation_id : "");
    resetForm();
    refresh().catch(function (e) { failure(vdx.t("booking.failed") + " " + e.message); });
    clearInterval(timer);
    timer = setInterval(function () { refresh().catch(function () {}); }, 10000);
  }

  (async function () {
    await vdx.loadTexts();
    api = vdx.api;
    try { await vdx.initAuth(); } catch (e) { failure(String(e.message || e)); }
    $("sign-out").addEventListener("click", vdx.signOut);
    $("meeting-form").addEventListener("submit", save);
    $("m-cancel-edit").addEventListener("click", resetForm);
    $("invite-form").addEventListener("submit", sendInvite);
    $("invite-close").addEventListener("click", function () { $("invite").close(); });
    window.vdxBooking.refresh = refresh;
    if (vdx.token()) showApp();
    else { $("signin").hidden = false; vdx.wireSignIn(showApp); }
    window.vdxBooking.ready = true;
  })();
})();
