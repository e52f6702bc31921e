// Pre-built UI (email OTP) of the dev-stack Authsignal emulator.
// Speaks the @authsignal/browser popup protocol: JSON *strings* posted to the page
// that launched us (window.parent in popup mode, window.opener in window mode).
"use strict";

(function () {
  var token = new URLSearchParams(window.location.search).get("token") || "";
  var host = window.opener || (window.parent !== window ? window.parent : null);

  var form = document.getElementById("otp-form");
  var input = document.getElementById("code");
  var verifyButton = form.querySelector("button[type=submit]");
  var resendButton = document.getElementById("resend");
  var closeButton = document.getElementById("close");
  var heading = document.getElementById("heading");
  var intro = document.getElementById("intro");
  var statusEl = document.getElementById("status");

  function post(message) {
    // The SDK checks event.origin against this page's origin; the token is useless
    // without the app's secret key, so any parent may receive it.
    if (host) host.postMessage(JSON.stringify(message), "*");
  }

  function say(text, kind) {
    statusEl.textContent = text;
    statusEl.setAttribute("data-kind", kind || "info");
  }

  function finish(title, text, kind) {
    heading.textContent = title;
    intro.hidden = true;
    form.hidden = true;
    say(text, kind);
  }

  function call(path, body) {
    return fetch(path, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body),
      credentials: "omit",
    }).then(function (response) {
      return response.json().catch(function () { return {}; }).then(function (data) {
        return { ok: response.ok, status: response.status, data: data };
      });
    });
  }

  function busy(on) {
    verifyButton.disabled = on;
    resendButton.disabled = on;
    form.setAttribute("aria-busy", on ? "true" : "false");
  }

  function onError(result) {
    var code = result.data.errorCode;
    var text = result.data.error || "Something went wrong. Try again.";
    if (code === "challenge_failed") {
      finish("Too many wrong codes", text, "error");
      closeButton.hidden = false;
    } else if (code === "expired_token" || code === "invalid_token") {
      finish(code === "expired_token" ? "Link expired" : "Link not valid", text, "error");
      post({ event: "AUTHSIGNAL_API_ERROR", errorCode: code, statusCode: result.status });
    } else {
      say(text, "error");
      input.setAttribute("aria-invalid", "true");
      input.focus();
      input.select();
    }
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    var code = input.value.replace(/\s+/g, "");
    if (!/^[0-9]{6}$/.test(code)) {
      say("Enter the 6-digit code from the email.", "error");
      input.setAttribute("aria-invalid", "true");
      input.focus();
      return;
    }
    busy(true);
    say("Checking the code…");
    call("/challenge/verify", { token: token, code: code }).then(function (result) {
      busy(false);
      if (result.ok) {
        input.removeAttribute("aria-invalid");
        finish("Verified", "Verified. You can close this window.", "ok");
        post({ event: "AUTHSIGNAL_CLOSE_POPUP", token: result.data.token });
      } else {
        onError(result);
      }
    }, function () {
      busy(false);
      say("The emulator did not answer. Check that the dev stack is running and try again.", "error");
    });
  });

  resendButton.addEventListener("click", function () {
    busy(true);
    say("Sending a new code…");
    call("/challenge/resend", { token: token }).then(function (result) {
      busy(false);
      if (result.ok) {
        input.value = "";
        input.removeAttribute("aria-invalid");
        say("We sent a new code to " + result.data.to + ".", "ok");
        input.focus();
      } else {
        onError(result);
      }
    }, function () {
      busy(false);
      say("The emulator did not answer. Check that the dev stack is running and try again.", "error");
    });
  });

  // Failed or already verified: hand the token back so the app can validate it and
  // decide what comes next (a new attempt, or signing in).
  closeButton.addEventListener("click", function () {
    post({ event: "AUTHSIGNAL_CLOSE_POPUP", token: token });
  });

  var state = document.body.getAttribute("data-state");
  if (state === "expired" || state === "invalid") {
    post({ event: "AUTHSIGNAL_API_ERROR", errorCode: state === "expired" ? "expired_token" : "invalid_token", statusCode: 400 });
  }
  if (state !== "ready") statusEl.setAttribute("data-kind", "error");
  if (state === "succeeded") statusEl.setAttribute("data-kind", "ok");

  // Dynamic height: the SDK sizes its iframe from raw {height} messages.
  function reportHeight() {
    if (host && host === window.parent) {
      host.postMessage({ height: Math.ceil(document.documentElement.getBoundingClientRect().height) }, "*");
    }
  }
  if (window.ResizeObserver) new ResizeObserver(reportHeight).observe(document.body);
  reportHeight();

  post({ event: "AUTHSIGNAL_READY" });
  // Not the autofocus attribute: Chromium refuses it in a cross-origin iframe.
  if (state === "ready") input.focus();
})();
