// The reference provider for `cargo bench --bench compare`: panva's oidc-provider
// (npm, OpenID Certified), one process, its in-memory store, configured as
// Guichet is for the bench: one confidential first-party client `bench`
// (client_secret_basic, its redirect URI never visited), the code flow, PKCE
// only for public clients, refresh tokens rotated on each use, RS256 ID tokens
// with a fresh RSA-2048 key, introspection. A student signs in without a form:
// the interaction is finished at once for `cbernard`, with consent to every
// scope asked (Guichet's first-party clients ask none), so the bench measures
// the protocol, not a page.
//
// Usage: node peer.mjs PORT
import { generateKeyPairSync } from "node:crypto";
import http from "node:http";

import Provider from "oidc-provider";

const port = Number(process.argv[2] ?? 3000);
const issuer = `http://127.0.0.1:${port}`;
const { privateKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
const jwk = { ...privateKey.export({ format: "jwk" }), use: "sig", alg: "RS256", kid: "bench" };

const claims = {
  sub: "cbernard",
  name: "Chloé Bernard",
  given_name: "Chloé",
  family_name: "Bernard",
  preferred_username: "cbernard",
  email: "cbernard@univ-demo.fr",
  email_verified: true,
};

const provider = new Provider(issuer, {
  clients: [
    {
      client_id: "bench",
      client_secret: process.env.PEER_SECRET ?? "bench-secret-bench-secret-bench-secret",
      redirect_uris: ["http://127.0.0.1:9/callback"],
      grant_types: ["authorization_code", "refresh_token"],
      response_types: ["code"],
      token_endpoint_auth_method: "client_secret_basic",
      id_token_signed_response_alg: "RS256",
    },
  ],
  jwks: { keys: [jwk] },
  claims: {
    openid: ["sub"],
    profile: ["name", "given_name", "family_name", "preferred_username"],
    email: ["email", "email_verified"],
  },
  scopes: ["openid", "profile", "email", "offline_access"],
  findAccount: async (_ctx, accountId) => ({
    accountId,
    claims: async () => ({ ...claims, sub: accountId }),
  }),
  features: {
    devInteractions: { enabled: false },
    introspection: { enabled: true },
    revocation: { enabled: true },
  },
  interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}` },
  pkce: { required: (_ctx, client) => client.tokenEndpointAuthMethod === "none" },
  // As Guichet: a refresh token whenever offline_access is granted, rotated on use.
  issueRefreshToken: async (_ctx, client, code) =>
    client.grantTypeAllowed("refresh_token") && code.scopes.has("offline_access"),
  rotateRefreshToken: true,
  ttl: {
    AccessToken: 3600,
    AuthorizationCode: 60,
    IdToken: 3600,
    RefreshToken: 30 * 24 * 3600,
    Grant: 30 * 24 * 3600,
    Interaction: 600,
    Session: 12 * 3600,
  },
});
provider.proxy = false;

/// The interaction, finished at once: signed in as cbernard, every scope granted.
async function finish(req, res) {
  const details = await provider.interactionDetails(req, res);
  const accountId = "cbernard";
  const grant = details.grantId
    ? await provider.Grant.find(details.grantId)
    : new provider.Grant({ accountId, clientId: details.params.client_id });
  const missing = details.prompt.details.missingOIDCScope ?? [];
  grant.addOIDCScope(["openid", ...missing].join(" "));
  for (const claim of details.prompt.details.missingOIDCClaims ?? []) {
    grant.addOIDCClaims([claim]);
  }
  const grantId = await grant.save();
  await provider.interactionFinished(
    req,
    res,
    { login: { accountId }, consent: { grantId } },
    { mergeWithLastSubmission: false },
  );
}

const callback = provider.callback();
http
  .createServer((req, res) => {
    if (req.url.startsWith("/interaction/")) {
      finish(req, res).catch((error) => {
        res.statusCode = 500;
        res.end(String(error));
      });
      return;
    }
    callback(req, res);
  })
  .listen(port, "127.0.0.1", () => console.log(`oidc-provider listening on ${issuer}`));
