// The sign-in page: relays to the backend, opens Authsignal's pre-built UI in a popup.
// Every URL is relative so the page works at "/" locally and under "/api/" deployed.
// The access token lives in this closure only; the refresh token is an HttpOnly cookie.
(() => {
  "use strict";

  const $ = (id) => document.getElementById(id);
  const state = { accessToken: null, authsignal: null, email: "" };
  // The action of passkey autofill: it only picks the account (see passkeyAutofill).
  const LOOKUP_ACTION = "passkeyLookup";
  const PASSKEY_ERRORS = {
    unknown_credential: "That passkey is not registered for this account. Use Sign in, then choose Add a passkey.",
    expired_token: "The passkey request expired. Try again.",
    invalid_credential: "Your passkey's answer was not accepted. Try again.",
  };

  // Texts for failures the server could not word itself (it usually does).
  const FALLBACK = {
    network: "We could not reach the server. Check your connection and try again.",
    400: "That request was not accepted. Check what you entered and try again.",
    401: "Your sign-in did not go through. Please start again.",
    429: "Too many attempts right now. Wait a minute and try again.",
    503: "The sign-in service is not reachable right now. Try again in a minute.",
    other: "Something went wrong on our side. Try again in a moment.",
  };

  // kind: "progress" (spinner), "ok", "error", or nothing (plain information).
  function announce(text, kind) {
    const status = $("status");
    status.textContent = text;
    if (kind) status.dataset.kind = kind;
    else if (text) status.dataset.kind = "info";
    else delete status.dataset.kind;
  }

  async function call(path, body, headers) {
    const init = body === undefined
      ? { headers: headers || {}, credentials: "same-origin" }
      : {
          method: "POST",
          headers: { "Content-Type": "application/json", ...(headers || {}) },
          body: JSON.stringify(body),
          credentials: "same-origin",
        };
    let response;
    try {
      response = await fetch(path, init);
    } catch (networkError) {
      const error = new Error(FALLBACK.network);
      error.status = 0;
      throw error;
    }
    const data = response.status === 204 ? null : await response.json().catch(() => null);
    if (!response.ok) {
      const message = (data && data.error && data.error.message)
        || FALLBACK[response.status] || FALLBACK.other;
      const error = new Error(message);
      error.status = response.status;
      error.code = data && data.error && data.error.code;
      throw error;
    }
    return data;
  }

  function claimsOf(jwt) {
    const part = jwt.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    const bytes = Uint8Array.from(atob(part), (c) => c.charCodeAt(0));
    return JSON.parse(new TextDecoder().decode(bytes));
  }

  // The claims worth explaining, in reading order; all of them are in the JSON below.
  const CLAIM_LABELS = {
    email: "Email",
    email_verified: "Email verified",
    sub: "User ID",
    auth_time: "Signed in",
    exp: "Expires",
    iss: "Issuer (user pool)",
    aud: "Audience (app client)",
  };
  const TIME_CLAIMS = new Set(["auth_time", "iat", "exp"]);

  function relative(seconds) {
    const minutes = Math.round(seconds / 60);
    const format = new Intl.RelativeTimeFormat(undefined, { numeric: "auto" });
    return Math.abs(minutes) < 60 ? format.format(minutes, "minute") : format.format(Math.round(minutes / 60), "hour");
  }

  function claimValue(name, value) {
    const detail = document.createElement("dd");
    if (TIME_CLAIMS.has(name) && typeof value === "number") {
      const when = new Date(value * 1000);
      const time = document.createElement("time");
      time.dateTime = when.toISOString();
      time.textContent = when.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
      const note = document.createElement("small");
      note.textContent = relative(value - Date.now() / 1000);
      detail.append(time, note);
    } else if (typeof value === "boolean" || value === "true" || value === "false") {
      const yes = value === true || value === "true";
      const badge = document.createElement("span");
      badge.className = yes ? "badge" : "badge no";
      badge.textContent = yes ? "Yes" : "No";
      detail.append(badge);
    } else {
      detail.textContent = typeof value === "object" ? JSON.stringify(value) : String(value);
    }
    return detail;
  }

  function showClaims(claims) {
    const list = $("claims");
    list.replaceChildren();
    for (const [name, label] of Object.entries(CLAIM_LABELS)) {
      if (!(name in claims)) continue;
      const term = document.createElement("dt");
      const code = document.createElement("code");
      code.textContent = name;
      term.append(label, code);
      list.append(term, claimValue(name, claims[name]));
    }
    $("claims-json").textContent = JSON.stringify(claims, null, 2);
  }

  // "name@example.com" may break before the "@" on a narrow screen, not mid-word.
  function showEmail(element, email) {
    const at = email.lastIndexOf("@");
    if (at > 0) element.replaceChildren(email.slice(0, at), document.createElement("wbr"), email.slice(at));
    else element.textContent = email;
  }

  function settle() {
    $("restoring").hidden = true;
    $("card").setAttribute("aria-busy", "false");
  }

  function showSignedIn(answer, moveFocus) {
    state.accessToken = answer.accessToken;
    const claims = claimsOf(answer.idToken);
    const email = claims.email || "";
    state.email = email;
    showEmail($("signed-in-email"), email);
    $("avatar").textContent = email.charAt(0);
    showClaims(claims);
    $("api-section").hidden = true;
    $("api-result").textContent = "";
    settle();
    $("signin-view").hidden = true;
    $("signed-in-view").hidden = false;
    $("signed-in-details").hidden = false;
    if (moveFocus) $("signed-in-title").focus();
  }

  function showForm() {
    state.accessToken = null;
    settle();
    $("signed-in-view").hidden = true;
    $("signed-in-details").hidden = true;
    $("signin-view").hidden = false;
  }

  function busy(button, on) {
    button.disabled = on;
    button.setAttribute("aria-busy", on ? "true" : "false");
  }

  function authsignalClient() {
    if (!state.authsignal) {
      state.authsignal = call("config").then((config) => {
        if (!window.authsignal || !window.authsignal.Authsignal) {
          throw new Error("The Authsignal Web SDK did not load. Check your connection or content blocker, then reload the page.");
        }
        return new window.authsignal.Authsignal({ tenantId: config.tenantId, baseUrl: config.baseUrl });
      });
      state.authsignal.catch(() => { state.authsignal = null; });
    }
    return state.authsignal;
  }

  // What the pre-built UI reported through onError ({errorCode, statusCode}).
  function uiErrorText(error) {
    const code = error.errorCode || "";
    if (code === "expired_token") return "The verification expired before it was finished.";
    if (code === "invalid_token") return "The verification link was not valid.";
    if (error.statusCode === 429) return "Too many verification attempts right now. Wait a few minutes.";
    if (error.statusCode >= 500) return "Authsignal could not complete the verification right now.";
    return `The verification dialog reported a problem${code ? ` (${code})` : ""}.`;
  }

  async function signIn(email) {
    announce("Starting sign-in…", "progress");
    const client = await authsignalClient();
    let answer = await call("auth/start", { email });
    while (answer.status === "CHALLENGE") {
      // The tenant decides the method (code, link, authenticator app, passkey…).
      announce("Waiting for you: verify it's you in the Authsignal dialog.", "progress");
      let uiError = null;
      const { token } = await client.launch(answer.challengeUrl, {
        mode: "popup",
        onError: (error) => {
          uiError = error || {};
          announce(uiErrorText(uiError), "error");
        },
      });
      if (!token) {
        if (uiError) announce(`${uiErrorText(uiError)} Sign in again to get a new one.`, "error");
        else announce("Sign-in cancelled. Nothing was changed; sign in again whenever you are ready.");
        return false;
      }
      announce("Checking the result with Cognito…", "progress");
      answer = await call("auth/finish", { email, session: answer.session, token });
      if (answer.status === "CHALLENGE") {
        announce("That verification was not accepted. We opened a new challenge: try once more.", "error");
      }
    }
    showSignedIn(answer, true);
    announce("You are signed in.", "ok");
    return true;
  }

  function passkeyFailure(result) {
    const error = new Error(PASSKEY_ERRORS[result.errorCode] || result.error
      || "Your passkey could not be used. Try again, or sign in with Sign in.");
    error.status = 400;
    return error;
  }

  // The browser's own passkey dialog was dismissed or failed: not a server error.
  function ceremonyEnded(error, what) {
    if (error && (error.name === "NotAllowedError" || error.name === "AbortError")) {
      announce(`${what} cancelled. Nothing was changed.`);
      return true;
    }
    return false;
  }

  // One gesture: Cognito's round starts, and the passkey answers that round's own
  // Authsignal action (Create's track token), so Verify's binding to the round holds.
  async function passkeySignIn(email) {
    announce("Starting passkey sign-in…", "progress");
    const client = await authsignalClient();
    const answer = await call("auth/start", { email });
    if (!answer.challengeToken) throw new Error("Passkey sign-in is not available right now. Use Sign in.");
    announce("Waiting for you: confirm with your passkey in your browser's prompt.", "progress");
    let result;
    try {
      result = await client.passkey.signIn({ token: answer.challengeToken });
    } catch (error) {
      if (ceremonyEnded(error, "Passkey sign-in")) return false;
      throw error;
    }
    if (!result || result.error || !result.data || !result.data.token) throw passkeyFailure(result || {});
    announce("Checking the result with Cognito…", "progress");
    const finished = await call("auth/finish", { email, session: answer.session, token: result.data.token });
    if (finished.status !== "SIGNED_IN") {
      throw new Error("Your passkey was not accepted for this account. Try again, or use Sign in.");
    }
    showSignedIn(finished, true);
    announce("You are signed in with your passkey.", "ok");
    return true;
  }

  // Passkey autofill on the Email box. The token this yields belongs to an action of its
  // own, not to a Cognito round, so it never signs anyone in: it only names the account,
  // and the bound passkey sign-in above runs for it.
  async function passkeyAutofill() {
    if (!window.PublicKeyCredential || !PublicKeyCredential.isConditionalMediationAvailable) return;
    try {
      if (!(await PublicKeyCredential.isConditionalMediationAvailable())) return;
      const client = await authsignalClient();
      const result = await client.passkey.signIn({ action: LOOKUP_ACTION, autofill: true });
      const username = result && result.data && result.data.username;
      if (!username || !$("signed-in-view").hidden) return;
      $("email").value = username;
      await runPasskeySignIn();
    } catch (error) {
      // Autofill is a convenience: the buttons remain.
    }
  }

  $("signin-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const input = $("email");
    const button = $("signin-button");
    if (button.disabled) return;
    const email = input.value.trim();
    if (!email || !input.checkValidity()) {
      input.setAttribute("aria-invalid", "true");
      announce(email ? "That does not look like an email address. Check it and try again."
                     : "Enter your email address to sign in.", "error");
      input.focus();
      return;
    }
    input.removeAttribute("aria-invalid");
    busy(button, true);
    let signedIn = false;
    try {
      signedIn = await signIn(email);
    } catch (error) {
      announce(error.message, "error");
      if (error.status === 400) input.setAttribute("aria-invalid", "true");
    } finally {
      busy(button, false);
    }
    if (!signedIn) input.focus();
  });

  $("email").addEventListener("input", () => $("email").removeAttribute("aria-invalid"));

  function emailOrExplain(input) {
    const email = input.value.trim();
    if (!email || !input.checkValidity()) {
      input.setAttribute("aria-invalid", "true");
      announce(email ? "That does not look like an email address. Check it and try again."
                     : "Enter your email address, then choose Sign in with a passkey.", "error");
      input.focus();
      return null;
    }
    input.removeAttribute("aria-invalid");
    return email;
  }

  async function runPasskeySignIn() {
    const input = $("email");
    const button = $("passkey-button");
    if (button.disabled) return;
    const email = emailOrExplain(input);
    if (!email) return;
    busy(button, true);
    busy($("signin-button"), true);
    let signedIn = false;
    try {
      signedIn = await passkeySignIn(email);
    } catch (error) {
      announce(error.message, "error");
    } finally {
      busy(button, false);
      busy($("signin-button"), false);
    }
    if (!signedIn) input.focus();
  }

  $("passkey-button").addEventListener("click", runPasskeySignIn);

  $("add-passkey").addEventListener("click", async () => {
    const button = $("add-passkey");
    busy(button, true);
    announce("Preparing your new passkey…", "progress");
    try {
      const client = await authsignalClient();
      const passkeyToken = () => call("api/passkey-token", {}, { Authorization: "Bearer " + state.accessToken });
      let token;
      try {
        ({ token } = await passkeyToken());
      } catch (error) {
        // Adding a passkey needs a recent sign-in: one more round, then the passkey.
        if (error.code !== "reauthenticate") throw error;
        announce("To add a passkey, first confirm it is you.", "progress");
        if (!(await signIn(state.email))) return;
        ({ token } = await passkeyToken());
      }
      announce("Waiting for you: create the passkey in your browser's prompt.", "progress");
      let result;
      try {
        result = await client.passkey.signUp({ token, username: state.email, displayName: state.email });
      } catch (error) {
        if (ceremonyEnded(error, "Adding a passkey")) return;
        throw error;
      }
      if (!result || result.error || !result.data || !result.data.token) throw passkeyFailure(result || {});
      announce("Passkey added. Next time, choose Sign in with a passkey.", "ok");
    } catch (error) {
      announce(error.status === 401 ? "Your session has ended. Sign out and sign in again." : error.message, "error");
    } finally {
      busy(button, false);
    }
  });

  // Access tokens live minutes (the API verifies them locally, so they are kept short): an
  // expired one is renewed once through the refresh cookie, then the call is made again.
  async function callProtected(path) {
    const send = () => call(path, undefined, { Authorization: "Bearer " + state.accessToken });
    try {
      return await send();
    } catch (error) {
      if (error.status !== 401 || error.code !== "token_expired") throw error;
      const answer = await call("auth/refresh", {});
      if (answer.status !== "SIGNED_IN") throw error;
      state.accessToken = answer.accessToken;
      return send();
    }
  }

  $("call-api").addEventListener("click", async () => {
    const button = $("call-api");
    busy(button, true);
    announce("Calling the protected API…", "progress");
    try {
      const me = await callProtected("api/me");
      $("api-result").textContent = JSON.stringify(me, null, 2);
      $("api-section").hidden = false;
      announce("The protected API answered with your identity.", "ok");
    } catch (error) {
      announce(error.status === 401 ? "Your session has ended. Sign out and sign in again." : error.message, "error");
    } finally {
      busy(button, false);
    }
  });

  $("sign-out").addEventListener("click", async () => {
    const button = $("sign-out");
    busy(button, true);
    announce("Signing out…", "progress");
    try {
      await call("auth/sign-out", {});
      showForm();
      announce("You are signed out. Your refresh token was revoked.", "ok");
      $("email").focus();
    } catch (error) {
      announce(error.message, "error");
    } finally {
      busy(button, false);
    }
  });

  // A reload restores the session from the HttpOnly refresh cookie.
  (async () => {
    try {
      const answer = await call("auth/refresh", {});
      if (answer.status === "SIGNED_IN") {
        showSignedIn(answer, false);
        return;
      }
      showForm();
    } catch (error) {
      showForm();
      if (error.status !== 401) announce(error.message, "error");
    }
    passkeyAutofill();
  })();
})();
