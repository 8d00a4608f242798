// Sign-in for the staff pages: OpenID Connect authorization code flow with PKCE (e.g. Keycloak),
// or, on a development node without an identity provider, the dev sign-in (a dev-key token for an
// organisation, e-mail and role). The access token is kept in sessionStorage and sent as
// "Authorization: Bearer" to the same APIs an integration uses.
"use strict";
(function (vdx) {
  var KEY = "vdx.token";
  vdx.config = null;
  function b64url(bytes) {
    var s = ""; new Uint8Array(bytes).forEach(function (b) { s += String.fromCharCode(b); });
    return btoa(s).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }
  function randomString() { var a = new Uint8Array(32); crypto.getRandomValues(a); return b64url(a); }
  async function discovery() {
    var res = await fetch(vdx.config.oidc.issuer + "/.well-known/openid-configuration");
    if (!res.ok) throw new Error("OpenID configuration: HTTP " + res.status);
    return res.json();
  }
  function redirectUri() { return location.origin + location.pathname; }
  function claimsOf(token) {
    try { return JSON.parse(atob(token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/"))); } catch (e) { return {}; }
  }
  vdx.token = function () {
    var t = sessionStorage.getItem(KEY);
    if (t && (claimsOf(t).exp || 0) * 1000 < Date.now()) { sessionStorage.removeItem(KEY); return null; }
    return t;
  };
  vdx.claims = function () { var t = vdx.token(); return t ? claimsOf(t) : {}; };
  vdx.signOut = function () { sessionStorage.removeItem(KEY); location.replace(redirectUri()); };
  vdx.oidcSignIn = async function () {
    var d = await discovery();
    var verifier = randomString(), state = randomString();
    var challenge = b64url(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(verifier)));
    sessionStorage.setItem("vdx.pkce", JSON.stringify({ verifier: verifier, state: state }));
    var q = new URLSearchParams({
      response_type: "code", client_id: vdx.config.oidc.clientId, redirect_uri: redirectUri(),
      scope: vdx.config.oidc.scope, state: state, code_challenge: challenge, code_challenge_method: "S256",
    });
    location.assign(d.authorization_endpoint + "?" + q.toString());
  };
  // Back from the identity provider with ?code=...&state=...: exchange the code (PKCE).
  async function finishOidc() {
    var q = new URLSearchParams(location.search);
    if (!q.get("code") && !q.get("error")) return;
    var saved = JSON.parse(sessionStorage.getItem("vdx.pkce") || "{}");
    sessionStorage.removeItem("vdx.pkce");
    history.replaceState(null, "", redirectUri());
    if (q.get("error")) throw new Error(q.get("error_description") || q.get("error"));
    if (!saved.state || saved.state !== q.get("state")) throw new Error("sign-in state mismatch");
    var d = await discovery();
    var res = await fetch(d.token_endpoint, {
      method: "POST", headers: { "Content-Type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({
        grant_type: "authorization_code", code: q.get("code"), redirect_uri: redirectUri(),
        client_id: vdx.config.oidc.clientId, code_verifier: saved.verifier,
      }),
    });
    var body = await res.json();
    if (!res.ok || !body.access_token) throw new Error(body.error_description || body.error || ("HTTP " + res.status));
    sessionStorage.setItem(KEY, body.access_token);
  }
  vdx.devSignIn = async function (organisation, email, role) {
    var res = await fetch("/web/dev-token", {
      method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ organisation: organisation, email: email, roles: [role] }),
    });
    var body = await res.json().catch(function () { return {}; });
    if (!res.ok) throw new Error(body.errorMessage || body.detail || ("HTTP " + res.status));
    sessionStorage.setItem(KEY, body.access_token);
  };
  // fetch with the bearer token; JSON in and out; throws {status, message} on an error answer
  vdx.api = async function (method, path, body) {
    var headers = { Authorization: "Bearer " + vdx.token() };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    var res = await fetch(path, { method: method, headers: headers, body: body === undefined ? undefined : JSON.stringify(body) });
    if (res.status === 204) return null;
    var text = await res.text();
    var data = null; try { data = text ? JSON.parse(text) : null; } catch (e) { data = text; }
    if (!res.ok) {
      var err = new Error((data && (data.errorMessage || data.message || data.detail)) || ("HTTP " + res.status));
      err.status = res.status; throw err;
    }
    return data;
  };
  vdx.initAuth = async function () {
    vdx.config = await (await fetch("/web/config")).json();
    await finishOidc();
  };
  // The sign-in card (#signin) of a staff page: the IdP button and/or the dev form.
  vdx.wireSignIn = function (onDone) {
    var oidcBox = document.getElementById("oidc-box"), devBox = document.getElementById("dev-box");
    var err = document.getElementById("signin-error");
    oidcBox.hidden = !vdx.config.oidc; devBox.hidden = !vdx.config.devSignIn;
    if (!vdx.config.oidc && !vdx.config.devSignIn) vdx.message(err, "error", vdx.t("signin.none"));
    document.getElementById("oidc-button").addEventListener("click", function () {
      vdx.oidcSignIn().catch(function (e) { vdx.message(err, "error", String(e.message || e)); });
    });
    document.getElementById("dev-form").addEventListener("submit", function (ev) {
      ev.preventDefault();
      vdx.devSignIn(document.getElementById("dev-org").value.trim(), document.getElementById("dev-email").value.trim(),
        document.getElementById("dev-role").value).then(onDone, function (e) { vdx.message(err, "error", String(e.message || e)); });
    });
  };
})(window.vdx);
