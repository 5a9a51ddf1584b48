// An independent relying party: the `openid-client` package (npm) signs in through
// Guichet as a web application would, with its own checks of every response:
// discovery, the code flow with PKCE, the ID token, UserInfo, refresh rotation,
// introspection (as Dovecot uses it) and RP-initiated logout. Only the student's
// part, the login form, is played by hand. One line per step; exit code 1 on the
// first failure.
//
// Environment: ISSUER, CLIENT_ID, CLIENT_SECRET, REDIRECT_URI, POST_LOGOUT_URI,
// LOGIN, PASSWORD (interop/node/run sets them against `guichet dev`).

import assert from 'node:assert/strict';
import * as oidc from 'openid-client';

const env = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
};
const issuer = new URL(env('ISSUER'));
const redirectUri = env('REDIRECT_URI');
const postLogoutUri = env('POST_LOGOUT_URI');

const step = (name) => console.log(`ok    ${name}`);

// A browser: a cookie jar and redirects followed by hand, stopping when Guichet
// sends it to another origin (the application), whose address it returns.
const jar = new Map();
async function browse(url, init = {}) {
  let current = new URL(url);
  let request = init;
  let signedIn = false;
  for (let hop = 0; hop < 12; hop += 1) {
    const cookie = [...jar].map(([k, v]) => `${k}=${v}`).join('; ');
    const response = await fetch(current, {
      ...request,
      redirect: 'manual',
      headers: { ...(request.headers ?? {}), ...(cookie ? { cookie } : {}) },
    });
    for (const line of response.headers.getSetCookie()) {
      const [pair, ...attributes] = line.split(';');
      const [name, value] = [pair.slice(0, pair.indexOf('=')), pair.slice(pair.indexOf('=') + 1)];
      const gone = attributes.some((a) => a.trim().toLowerCase() === 'max-age=0');
      if (gone) jar.delete(name.trim());
      else jar.set(name.trim(), value);
    }
    const location = response.headers.get('location');
    if (response.status >= 300 && response.status < 400 && location) {
      current = new URL(location, current);
      if (current.origin !== issuer.origin) return { away: current };
      request = {};
      continue;
    }
    const body = await response.text();
    if (body.includes('action="/login"') && !signedIn) {
      signedIn = true;
      request = signInForm(body);
      current = new URL('/login', issuer);
      continue;
    }
    return { page: current, status: response.status, body };
  }
  throw new Error('too many redirects');
}

const unescape = (text) =>
  text.replace(/&(#x[0-9a-f]+|#[0-9]+|amp|lt|gt|quot|apos);/gi, (_, e) => {
    const named = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" }[e.toLowerCase()];
    if (named) return named;
    return String.fromCodePoint(e[1] === 'x' || e[1] === 'X' ? parseInt(e.slice(2), 16) : parseInt(e.slice(1), 10));
  });

function hidden(body, name) {
  const match = body.match(new RegExp(`name="${name}" value="([^"]*)"`));
  assert.ok(match, `the login form has no ${name}`);
  return unescape(match[1]);
}

// The student types the login and password into Guichet's form.
function signInForm(body) {
  const form = new URLSearchParams({
    csrf: hidden(body, 'csrf'),
    next: hidden(body, 'next'),
    login: env('LOGIN'),
    password: env('PASSWORD'),
  });
  return {
    method: 'POST',
    body: form.toString(),
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
  };
}

const config = await oidc.discovery(
  issuer,
  env('CLIENT_ID'),
  { id_token_signed_response_alg: 'RS256' },
  oidc.ClientSecretBasic(env('CLIENT_SECRET')),
  { execute: [oidc.allowInsecureRequests] },
);
assert.equal(config.serverMetadata().issuer, env('ISSUER'));
step('discovery');

const verifier = oidc.randomPKCECodeVerifier();
const state = oidc.randomState();
const nonce = oidc.randomNonce();
const authorize = oidc.buildAuthorizationUrl(config, {
  redirect_uri: redirectUri,
  scope: 'openid profile email offline_access',
  code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
  code_challenge_method: 'S256',
  state,
  nonce,
});
const landing = await browse(authorize);
assert.ok(landing.away, `expected a redirect to the application, got ${landing.status} at ${landing.page}`);
const tokens = await oidc.authorizationCodeGrant(config, landing.away, {
  pkceCodeVerifier: verifier,
  expectedState: state,
  expectedNonce: nonce,
  idTokenExpected: true,
});
const claims = tokens.claims();
assert.ok(claims.sub && claims.sid && claims.auth_time, 'sub, sid and auth_time in the ID token');
assert.ok(tokens.refresh_token, 'a refresh token for offline_access');
step(`login (sub ${claims.sub})`);

const info = await oidc.fetchUserInfo(config, tokens.access_token, claims.sub);
assert.equal(info.preferred_username, env('LOGIN'));
assert.ok(info.email && info.email_verified === true, 'email and email_verified');
step(`userinfo (${info.preferred_username}, ${info.email})`);

const renewed = await oidc.refreshTokenGrant(config, tokens.refresh_token);
assert.notEqual(renewed.refresh_token, tokens.refresh_token, 'the refresh token rotates');
const again = await oidc.fetchUserInfo(config, renewed.access_token, claims.sub);
assert.equal(again.sub, claims.sub);
step('refresh (rotated; the new access token reads UserInfo)');

const introspection = await oidc.tokenIntrospection(config, renewed.access_token);
assert.equal(introspection.active, true);
assert.equal(introspection.username, env('LOGIN'));
step('introspection (active, username as Dovecot reads it)');

const logout = oidc.buildEndSessionUrl(config, {
  id_token_hint: renewed.id_token ?? tokens.id_token,
  post_logout_redirect_uri: postLogoutUri,
  state: 'bye',
});
const out = await browse(logout);
assert.ok(out.away, `expected a redirect after logout, got ${out.status} at ${out.page}`);
assert.equal(out.away.href, `${postLogoutUri}?state=bye`);
const silent = await browse(
  oidc.buildAuthorizationUrl(config, { redirect_uri: redirectUri, scope: 'openid', prompt: 'none', state: 's' }),
);
assert.equal(silent.away?.searchParams.get('error'), 'login_required', 'the session is over');
// offline_access outlives the session by design: the application keeps working
// for the student in the background (a mail client fetching new mail).
const offline = await oidc.refreshTokenGrant(config, renewed.refresh_token);
assert.ok(offline.access_token, 'offline access survives the sign-out');
step('logout (back at the application, session over, offline access kept)');
console.log('openid-client interop: all steps passed');
