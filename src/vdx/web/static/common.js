// Shared by the pages: language (Danish or English from navigator.languages), text lookup and
// fetch helpers. Plain ES2017, no build step.
"use strict";
window.vdx = window.vdx || {};
(function (vdx) {
  function pickLanguage(supported) {
    var langs = (navigator.languages && navigator.languages.length) ? navigator.languages : [navigator.language || "en"];
    for (var i = 0; i < langs.length; i++) {
      var base = String(langs[i]).toLowerCase().split("-")[0];
      if (base === "nb" || base === "no") base = "da"; // Norwegian readers get Danish rather than English
      if (supported.indexOf(base) >= 0) return base;
    }
    return "en";
  }
  vdx.texts = {};
  vdx.lang = "en";
  vdx.t = function (key, vars) {
    var s = (vdx.texts[vdx.lang] && vdx.texts[vdx.lang][key]) || (vdx.texts.en && vdx.texts.en[key]) || key;
    if (vars) Object.keys(vars).forEach(function (k) { s = s.split("{" + k + "}").join(String(vars[k])); });
    return s;
  };
  // data-i18n="key" sets the text; data-i18n-attr="placeholder:key,aria-label:key" sets attributes
  vdx.applyTexts = function (root) {
    (root || document).querySelectorAll("[data-i18n]").forEach(function (el) { el.textContent = vdx.t(el.getAttribute("data-i18n")); });
    (root || document).querySelectorAll("[data-i18n-attr]").forEach(function (el) {
      el.getAttribute("data-i18n-attr").split(",").forEach(function (pair) {
        var p = pair.split(":"); el.setAttribute(p[0].trim(), vdx.t(p[1].trim()));
      });
    });
  };
  vdx.loadTexts = async function () {
    var res = await fetch("/web/static/i18n.json", { cache: "no-cache" });
    vdx.texts = await res.json();
    vdx.lang = pickLanguage(Object.keys(vdx.texts));
    document.documentElement.lang = vdx.lang;
    vdx.applyTexts();
    var title = document.querySelector("title[data-i18n]");
    if (title) document.title = vdx.t(title.getAttribute("data-i18n"));
  };
  // An offer with every ICE candidate in it (the node takes no trickled candidates), or what
  // was gathered after 4 s, so a slow interface does not hold the call up.
  vdx.offerGathered = async function (pc) {
    await pc.setLocalDescription(await pc.createOffer());
    await new Promise(function (resolve) {
      if (pc.iceGatheringState === "complete") return resolve();
      var t = setTimeout(resolve, 4000);
      pc.addEventListener("icegatheringstatechange", function () { if (pc.iceGatheringState === "complete") { clearTimeout(t); resolve(); } });
    });
  };
  vdx.show = function (el, on) { el.hidden = !on; };
  vdx.message = function (el, kind, text) {
    el.className = "msg " + kind; el.textContent = text; el.hidden = !text;
  };
  vdx.fmtTime = function (iso) {
    var d = new Date(iso);
    return d.toLocaleString(vdx.lang === "da" ? "da-DK" : "en-GB", { dateStyle: "medium", timeStyle: "short" });
  };
})(window.vdx);
