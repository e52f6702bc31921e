// The sign-in page: relays to the backend, opens Authsignal's pre-built UI in a popup.
// Every URL is relative so the page works at "/" locally and under "/api/" deployed.
// The access token lives in this closure only; the refresh token is an HttpOnly cookie.
(() => {
  "use strict";

  const $ = (id) => document.getElementById(id);
  const state = { accessToken: null, authsignal: null };

  function announce(text, kind) {
    const status = $("status");
    status.textContent = text;
    status.className = "status" + (kind ? " " + kind : "");
  }

  async function call(path, body, headers) {
    const init = body === undefined
      ? { headers: headers || {} }
      : {
          method: "POST",
          headers: { "Content-Type": "application/json", ...(headers || {}) },
          body: JSON.stringify(body),
          credentials: "same-origin",
        };
    const response = await fetch(path, init);
    const data = response.status === 204 ? null : await response.json().catch(() => null);
    if (!response.ok) {
      const message = (data && data.error && data.error.message) || "Something went wrong. Try again.";
      const error = new Error(message);
      error.status = response.status;
      throw error;
    }
    return data;
  }

  function claimsOf(jwt) {
    const part = jwt.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    const bytes = Uint8Array.from(atob(part), (c) => c.charCodeAt(0));
    return JSON.parse(new TextDecoder().decode(bytes));
  }

  function showClaims(claims) {
    const list = $("claims");
    list.replaceChildren();
    for (const [name, value] of Object.entries(claims)) {
      const term = document.createElement("dt");
      term.textContent = name;
      const detail = document.createElement("dd");
      const isTime = ["auth_time", "iat", "exp"].includes(name) && typeof value === "number";
      detail.textContent = isTime ? `${value} (${new Date(value * 1000).toLocaleString()})` : String(value);
      list.append(term, detail);
    }
  }

  function showSignedIn(answer) {
    state.accessToken = answer.accessToken;
    const claims = claimsOf(answer.idToken);
    $("signed-in-email").textContent = claims.email || "";
    showClaims(claims);
    $("api-section").hidden = true;
    $("signin-view").hidden = true;
    $("signed-in-view").hidden = false;
    $("signed-in-title").setAttribute("tabindex", "-1");
    $("signed-in-title").focus();
  }

  function showForm() {
    state.accessToken = null;
    $("signed-in-view").hidden = true;
    $("signin-view").hidden = false;
  }

  function busy(button, on) {
    button.disabled = on;
    button.setAttribute("aria-busy", on ? "true" : "false");
  }

  async function authsignalClient() {
    if (!state.authsignal) {
      const config = await call("config");
      state.authsignal = new window.authsignal.Authsignal({ tenantId: config.tenantId, baseUrl: config.baseUrl });
    }
    return state.authsignal;
  }

  async function signIn(email) {
    const client = await authsignalClient();
    announce("Starting sign-in…");
    let answer = await call("auth/start", { email });
    while (answer.status === "CHALLENGE") {
      announce("Check your email for a code and enter it in the dialog.");
      const { token } = await client.launch(answer.challengeUrl, { mode: "popup" });
      if (!token) {
        announce("Sign-in cancelled. You can try again whenever you are ready.");
        return;
      }
      announce("Verifying…");
      answer = await call("auth/finish", { email, session: answer.session, token });
      if (answer.status === "CHALLENGE") {
        announce("That did not work. Try the challenge once more.", "error");
      }
    }
    showSignedIn(answer);
    announce("You are signed in.", "ok");
  }

  $("signin-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const email = $("email").value.trim();
    if (!email) {
      announce("Enter your email address to sign in.", "error");
      $("email").focus();
      return;
    }
    const button = $("signin-button");
    busy(button, true);
    try {
      await signIn(email);
    } catch (error) {
      announce(error.message, "error");
    } finally {
      busy(button, false);
    }
  });

  $("call-api").addEventListener("click", async () => {
    const button = $("call-api");
    busy(button, true);
    try {
      const me = await call("api/me", undefined, { Authorization: "Bearer " + state.accessToken });
      $("api-result").textContent = JSON.stringify(me, null, 2);
      $("api-section").hidden = false;
      announce("The protected API answered.", "ok");
    } catch (error) {
      announce(error.message, "error");
    } finally {
      busy(button, false);
    }
  });

  $("sign-out").addEventListener("click", async () => {
    try {
      await call("auth/sign-out", {});
      showForm();
      announce("You are signed out.", "ok");
      $("email").focus();
    } catch (error) {
      announce(error.message, "error");
    }
  });

  // A reload restores the session from the HttpOnly refresh cookie.
  (async () => {
    try {
      showSignedIn(await call("auth/refresh", {}));
    } catch (error) {
      showForm();
      if (error.status !== 401) announce(error.message, "error");
    }
  })();
})();
