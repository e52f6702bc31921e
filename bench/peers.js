// The Node peers of our Create and Verify triggers, for bench/run.py: the stack of Authsignal's
// own Cognito example (@authsignal/node, AWS SDK v3), doing the same work against the same dev
// stack, in a fresh process. Clients are made at module scope, as a Node Lambda makes them.
//   node bench/peers.js create|verify '<JSON input>'
"use strict";
const { Authsignal } = require("@authsignal/node");

const [mode, raw] = process.argv.slice(2);
const input = JSON.parse(raw);
const authsignal = new Authsignal({ apiSecretKey: input.secretKey, apiUrl: input.apiUrl });

async function create() {
  const { url } = await authsignal.track({
    userId: input.sub, action: input.action, attributes: { email: input.email },
  });
  if (!url) throw new Error("track gave no url");
}

async function verify() {
  const {
    CognitoIdentityProviderClient, AdminUpdateUserAttributesCommand,
  } = require("@aws-sdk/client-cognito-identity-provider");
  const cognito = new CognitoIdentityProviderClient({ region: input.region, endpoint: input.cognitoUrl });
  const result = await authsignal.validateChallenge({ token: input.token, userId: input.sub, action: input.action });
  if (!(result.isValid && result.state === "CHALLENGE_SUCCEEDED")) throw new Error("not valid");
  await cognito.send(new AdminUpdateUserAttributesCommand({
    UserPoolId: input.userPoolId, Username: input.username,
    UserAttributes: [{ Name: "email_verified", Value: "true" }],
  }));
}

({ create, verify })[mode]().catch((error) => {
  console.error(error);
  process.exit(1);
});
