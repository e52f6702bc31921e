// Pre-built UI of the dev-stack Authsignal emulator: every method the dev tenant offers.
// Speaks the @authsignal/browser popup protocol: JSON *strings* posted to the page that
// launched us (window.parent in popup mode, window.opener in window mode), plus raw
// {height} objects for the iframe's size.
"use strict";

(function () {
  var token = new URLSearchParams(window.location.search).get("token") || "";
  var host = window.opener || (window.parent !== window ? window.parent : null);
  var view = {};
  try { view = JSON.parse(document.body.getAttribute("data-view") || "{}"); } catch (e) { view = {}; }
  var state = document.body.getAttribute("data-state");

  var $ = function (id) { return document.getElementById(id); };
  var form = $("otp-form");
  var input = $("code");
  var verifyButton = form.querySelector("button[type=submit]");
  var resendButton = $("resend");
  var statusEl = $("status");
  var SCREENS = ["methods", "phone-form", "totp-setup", "otp-form", "link-wait", "passkey-wait"];

  // What the code box is for now: EMAIL_OTP, SMS or AUTHENTICATOR_APP.
  var codeMethod = "EMAIL_OTP";
  // A method the user chose to set up: it needs a proven first method, then its own step.
  var settingUp = null;
  var proven = view.proven === true;
  var polling = null;
  // The passkey ceremony to run again on "Try again": sign-in or setup.
  var passkeyCeremony = null;

  var CODE_TEXT = {
    EMAIL_OTP: { hint: "Enter the 6-digit code from the email.", endpoint: "/challenge/verify", resend: "/challenge/resend" },
    SMS: { hint: "Enter the 6-digit code from the text message.", endpoint: "/challenge/sms/verify", resend: "/challenge/sms/send" },
    AUTHENTICATOR_APP: { hint: "Enter the 6-digit code your authenticator app shows now.", endpoint: "/challenge/totp/verify", resend: null },
  };
  var CHOICES = {
    EMAIL_OTP: ["Email me a code", "Email me a code"],
    EMAIL_MAGIC_LINK: ["Email me a link", "Email me a link"],
    SMS: ["Text me a code", "Set up text messages"],
    AUTHENTICATOR_APP: ["Use my authenticator app", "Set up an authenticator app"],
    PASSKEY: ["Use a passkey", "Set up a passkey"],
  };
  var SETTING_UP = { SMS: "text messages.", AUTHENTICATOR_APP: "your authenticator app.", PASSKEY: "a passkey." };

  function post(message) {
    // The SDK checks event.origin against this page's origin; the token is useless
    // without the app's secret key, so any parent may receive it.
    if (host) host.postMessage(JSON.stringify(message), "*");
  }

  function say(text, kind) {
    statusEl.textContent = text;
    statusEl.setAttribute("data-kind", kind || "info");
  }

  function show(screen, heading, intro) {
    SCREENS.forEach(function (id) { $(id).hidden = id !== screen && !(screen === "totp-setup" && id === "otp-form"); });
    $("heading").textContent = heading;
    $("intro").textContent = intro || "";
    $("intro").hidden = !intro;
    var others = (view.methods || []).length > 1 && screen !== "methods" && !proven;
    $("other-methods").hidden = !others;
    say("");
  }

  function call(path, body) {
    return fetch(path, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(Object.assign({ token: token }, body || {})),
      credentials: "omit",
    }).then(function (response) {
      return response.json().catch(function () { return {}; }).then(function (data) {
        return { ok: response.ok, status: response.status, data: data };
      });
    }, function () {
      return { ok: false, status: 0, data: { error: "The emulator did not answer. Check that the dev stack is running and try again." } };
    });
  }

  function busy(on) {
    document.querySelectorAll("main button").forEach(function (button) { button.disabled = on; });
    document.querySelector("main").setAttribute("aria-busy", on ? "true" : "false");
  }

  function finish(title, text, kind) {
    SCREENS.forEach(function (id) { $(id).hidden = true; });
    $("other-methods").hidden = true;
    $("heading").textContent = title;
    $("intro").hidden = true;
    say(text, kind);
  }

  function done() {
    if (polling) clearInterval(polling);
    $("cancel").hidden = true;
    finish("Verified", "Verified. You can close this window.", "ok");
    post({ event: "AUTHSIGNAL_CLOSE_POPUP", token: token });
  }

  function onError(result, field) {
    var code = result.data.errorCode;
    var text = result.data.error || "Something went wrong. Try again.";
    if (code === "challenge_failed") {
      finish("Too many wrong codes", text, "error");
      $("close").hidden = false;
      $("cancel").hidden = true;
    } else if (code === "expired_token" || code === "invalid_token") {
      finish(code === "expired_token" ? "Link expired" : "Link not valid", text, "error");
      post({ event: "AUTHSIGNAL_API_ERROR", errorCode: code, statusCode: result.status });
    } else {
      say(text, "error");
      var box = field || input;
      if (box.tagName === "INPUT") box.setAttribute("aria-invalid", "true");
      box.focus();
      if (box.select) box.select();
    }
  }

  // ---- screens -----------------------------------------------------------------

  function codeScreen(method, heading, intro) {
    codeMethod = method;
    show("otp-form", heading, intro);
    $("code-hint").textContent = CODE_TEXT[method].hint;
    resendButton.hidden = !CODE_TEXT[method].resend;
    input.value = "";
    input.removeAttribute("aria-invalid");
    input.focus();
  }

  function emailCode(sendNow, intro) {
    var show_ = function () {
      codeScreen("EMAIL_OTP", "Check your email", intro || ("We sent a code to " + view.email + "."));
    };
    if (!sendNow) return show_();
    busy(true);
    call("/challenge/resend").then(function (result) {
      busy(false);
      if (result.ok) show_(); else onError(result);
    });
  }

  function chooser() {
    var list = $("methods");
    list.replaceChildren();
    (view.methods || []).forEach(function (entry) {
      var labels = CHOICES[entry.method];
      if (!labels) return;
      var item = document.createElement("li");
      var button = document.createElement("button");
      button.type = "button";
      button.className = "secondary";
      button.textContent = labels[entry.enrolled ? 0 : 1];
      button.addEventListener("click", function () { choose(entry); });
      item.append(button);
      list.append(item);
    });
    show("methods", "Choose how to verify", "Pick one of the ways to prove it is you.");
    var first = list.querySelector("button");
    if (first) first.focus();
  }

  function choose(entry) {
    if (entry.method === "EMAIL_OTP") return emailCode(true);
    if (entry.method === "EMAIL_MAGIC_LINK") return magicLink();
    if (entry.enrolled) {
      if (entry.method === "SMS") return smsSend(null);
      if (entry.method === "AUTHENTICATOR_APP") {
        return codeScreen("AUTHENTICATOR_APP", "Open your authenticator app", "Enter the code it shows for this account.");
      }
      if (entry.method === "PASSKEY") return passkey("sign-in");
    }
    // Not enrolled yet: a second method needs a proven first one (the email code).
    settingUp = entry.method;
    if (proven) return setUp();
    emailCode(true, "First prove it is you: we sent a code to " + view.email + ". Then you set up " +
      SETTING_UP[entry.method]);
  }

  function setUp() {
    if (settingUp === "SMS") {
      show("phone-form", "Set up text messages", "We will text a code to this number to check it.");
      $("phone").focus();
    } else if (settingUp === "AUTHENTICATOR_APP") {
      busy(true);
      call("/challenge/totp/setup").then(function (result) {
        busy(false);
        if (!result.ok) return onError(result);
        $("totp-qr").src = result.data.qrCode;
        $("totp-secret").textContent = result.data.secret;
        $("totp-uri").href = result.data.uri;
        codeScreen("AUTHENTICATOR_APP", "Set up your authenticator app",
          "Scan the QR code with your authenticator app, then enter the 6-digit code it shows.");
        $("totp-setup").hidden = false;
      });
    } else if (settingUp === "PASSKEY") {
      passkey("setup");
    }
  }

  // A WebAuthn ceremony in this frame (the SDK's iframe allows publickey-credentials-get
  // and -create). The options are fetched first, so that the ceremony starts straight from a
  // click: a framed page may create a passkey only right after one (transient activation).
  var PASSKEY_STEPS = {
    "sign-in": { options: "/challenge/passkey/options", answer: "/challenge/passkey/verify",
      heading: "Use your passkey", intro: "Confirm with your passkey in your browser's prompt." },
    setup: { options: "/challenge/passkey/setup", answer: "/challenge/passkey/register",
      heading: "Set up a passkey", intro: "Choose Create a passkey, then confirm in your browser's prompt." },
  };
  var ready = null;  // {kind, challengeId, options}: fetched, waiting for the click
  var passkeyFailures = 0;
  var running = null;  // the ceremony's AbortController: another method or Cancel ends it

  // While options load or the browser's prompt is up: the spinner; otherwise the button.
  // The other buttons stay usable: a prompt that never ends must not trap the person.
  function passkeyWaiting(on) {
    $("passkey-waiting").hidden = !on;
    $("passkey-go").hidden = on;
  }

  function stopPasskey() {
    ready = null;
    if (running) running.abort();
    running = null;
  }

  function passkey(kind) {
    passkeyCeremony = kind;
    passkeyFailures = 0;
    show("passkey-wait", PASSKEY_STEPS[kind].heading, PASSKEY_STEPS[kind].intro);
    if (!window.PublicKeyCredential || !PublicKeyCredential.parseRequestOptionsFromJSON) {
      $("passkey-waiting").hidden = true;
      return say("This browser cannot use passkeys here. Use another method.", "error");
    }
    prepare(kind, kind === "sign-in");  // "Use a passkey" was the click
  }

  function prepare(kind, startNow) {
    ready = null;
    passkeyWaiting(true);
    call(PASSKEY_STEPS[kind].options).then(function (result) {
      if (passkeyCeremony !== kind || $("passkey-wait").hidden) return;  // the person moved on
      passkeyWaiting(false);
      if (!result.ok) {
        $("passkey-go").textContent = "Try again";
        return onError(result, $("passkey-go"));
      }
      ready = { kind: kind, challengeId: result.data.challengeId, options: result.data.options };
      if (startNow) return ceremony();
      $("passkey-go").textContent = kind === "setup" && !passkeyFailures ? "Create a passkey" : "Try again";
      $("passkey-go").focus();
    });
  }

  function ceremony() {
    var now = ready;
    var controller = new AbortController();
    ready = null;
    running = controller;
    passkeyWaiting(true);
    var prompt = now.kind === "setup"
      ? navigator.credentials.create({ publicKey: PublicKeyCredential.parseCreationOptionsFromJSON(now.options),
        signal: controller.signal })
      : navigator.credentials.get({ publicKey: PublicKeyCredential.parseRequestOptionsFromJSON(now.options),
        signal: controller.signal });
    prompt.then(function (credential) {
      busy(true);
      return call(PASSKEY_STEPS[now.kind].answer, { challengeId: now.challengeId, credential: credential.toJSON() });
    }).then(function (answer) {
      busy(false);
      running = null;
      if (answer.ok) { proven = true; return done(); }
      passkeyFailures += 1;
      passkeyWaiting(false);
      onError(answer, $("passkey-go"));
      $("passkey-go").textContent = "Try again";
    }, function (error) {
      if (controller.signal.aborted) return;  // ended on purpose: another method, or Cancel
      running = null;
      passkeyFailures += 1;
      var closed = error && (error.name === "NotAllowedError" || error.name === "AbortError");
      say(closed ? "The passkey prompt was closed. Choose Try again, or Use another method."
        : "Your browser could not use a passkey here (" + (error && error.name) + "). Use another method.", "error");
      prepare(now.kind, false);  // fresh options, so that Try again starts from its own click
    });
  }

  function smsSend(phone) {
    busy(true);
    call("/challenge/sms/send", phone ? { phone: phone } : {}).then(function (result) {
      busy(false);
      if (!result.ok) return onError(result, phone ? $("phone") : input);
      codeScreen("SMS", "Check your phone", "We texted a code to " + result.data.to + ".");
    });
  }

  function magicLink() {
    busy(true);
    call("/challenge/magic-link").then(function (result) {
      busy(false);
      if (!result.ok) return onError(result);
      show("link-wait", "Check your email", "We sent a sign-in link to " + result.data.to +
        ". Open it in another tab or on another device: this window continues on its own.");
      if (polling) clearInterval(polling);
      polling = setInterval(function () {
        call("/challenge/status").then(function (status) {
          if (status.ok && status.data.state === "CHALLENGE_SUCCEEDED") done();
          else if (!status.ok && status.data.errorCode) { clearInterval(polling); onError(status); }
        });
      }, 1000);
    });
  }

  // ---- events ------------------------------------------------------------------

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    var code = input.value.replace(/\s+/g, "");
    if (!/^[0-9]{6}$/.test(code)) {
      say(CODE_TEXT[codeMethod].hint, "error");
      input.setAttribute("aria-invalid", "true");
      input.focus();
      return;
    }
    busy(true);
    say("Checking the code…");
    call(CODE_TEXT[codeMethod].endpoint, { code: code }).then(function (result) {
      busy(false);
      if (!result.ok) return onError(result);
      input.removeAttribute("aria-invalid");
      var wasSettingUp = settingUp && codeMethod === "EMAIL_OTP";
      proven = true;
      if (wasSettingUp) return setUp();  // the first proof done: now the new method
      done();
    });
  });

  resendButton.addEventListener("click", function () {
    busy(true);
    say("Sending a new code…");
    call(CODE_TEXT[codeMethod].resend).then(function (result) {
      busy(false);
      if (!result.ok) return onError(result);
      input.value = "";
      input.removeAttribute("aria-invalid");
      say("We sent a new code to " + result.data.to + ".", "ok");
      input.focus();
    });
  });

  $("phone-form").addEventListener("submit", function (event) {
    event.preventDefault();
    var phone = $("phone").value.trim();
    if (!phone) {
      say("Enter your phone number, starting with + and the country code.", "error");
      $("phone").setAttribute("aria-invalid", "true");
      $("phone").focus();
      return;
    }
    $("phone").removeAttribute("aria-invalid");
    smsSend(phone);
  });

  $("resend-link").addEventListener("click", magicLink);
  $("passkey-go").addEventListener("click", function () {
    if (ready) ceremony(); else prepare(passkeyCeremony, passkeyCeremony === "sign-in");
  });
  // Cancel: the SDK closes the dialog and resolves {token: undefined}.
  $("cancel").addEventListener("click", function () { stopPasskey(); post({ event: "AUTHSIGNAL_CLOSE_POPUP" }); });
  $("other-methods").addEventListener("click", function () { stopPasskey(); settingUp = null; chooser(); });

  // Failed or already verified: hand the token back so the app can validate it and
  // decide what comes next (a new attempt, or signing in).
  $("close").addEventListener("click", function () {
    post({ event: "AUTHSIGNAL_CLOSE_POPUP", token: token });
  });

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
  if (state === "ready") {
    if (view.first === "CHOOSE") chooser();
    else codeScreen("EMAIL_OTP", "Check your email", "We sent a code to " + view.email + ".");
  }
})();
