// A whole connection through the official Node SDK against oidc-provider (certified OpenID
// Provider): real sign-in and consent pages, PKCE, refresh-token rotation, and revocation of the
// whole grant if a consumed refresh token is ever presented again.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { WorkOS } from '@workos-inc/node';
import { startPipes, startProvider, browse } from './harness.js';

let pipes;
let provider;
let workos;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

before(async () => {
  pipes = await startPipes();
  workos = new WorkOS(pipes.apiKey, { apiHostname: pipes.host, port: pipes.port, https: false, maxRetries: 0 });
  // The provider must know our redirect URI, which exists once the integration does.
  const placeholder = { name: 'OIDC', authorizationUrl: 'http://127.0.0.1:9/auth', tokenUrl: 'http://127.0.0.1:9/token' };
  const created = await workos.pipes.createDataIntegration({
    provider: 'oidc',
    enabled: true,
    scopes: ['openid', 'offline_access'],
    credentials: { type: 'custom', clientId: 'pipes-oidc', clientSecret: 'pipes-oidc-secret' },
    customProvider: { ...placeholder, additionalAuthorizationParameters: { prompt: 'consent' } },
  });
  provider = await startProvider('oidc-provider', created.redirectUri);
  await workos.pipes.updateDataIntegration({
    slug: 'oidc',
    customProvider: { authorizationUrl: provider.authorization_url, tokenUrl: provider.token_url },
  });
});

after(async () => {
  provider?.stop();
  await pipes?.stop();
});

test('sign in and consent at oidc-provider, vend, expire, refresh once for 50 callers, twice', async () => {
  await provider.setTtl(3);
  const { url } = await workos.pipes.authorizeDataIntegration({ slug: 'oidc', userId: 'user_oidc' });
  const done = await browse(url);
  assert.match(done.pathname, /\/callback$/, 'no return_to: the callback answered with its own page');

  const first = await workos.pipes.getAccessToken({ provider: 'oidc', userId: 'user_oidc' });
  assert.equal(first.active, true);
  assert.deepEqual(first.accessToken.missingScopes, []);
  assert.equal((await provider.stats()).code_exchanges, 1);

  let previous = first.accessToken.accessToken;
  for (const round of [1, 2]) {
    await sleep(3200);
    const before = await provider.stats();
    const answers = await Promise.all(
      Array.from({ length: 50 }, () => workos.pipes.getAccessToken({ provider: 'oidc', userId: 'user_oidc' })),
    );
    const tokens = new Set(answers.map((a) => (a.active ? a.accessToken.accessToken : `inactive:${a.error}`)));
    assert.equal(tokens.size, 1, `round ${round}: 50 identical answers, got ${[...tokens]}`);
    assert.ok(answers[0].active, `round ${round}: active`);
    assert.notEqual(answers[0].accessToken.accessToken, previous, `round ${round}: refreshed`);
    previous = answers[0].accessToken.accessToken;
    const stats = await provider.stats();
    assert.equal(stats.refreshes - before.refreshes, 1, 'one refresh per expiry');
    assert.equal(stats.reused_refresh_tokens, 0, 'a consumed refresh token is never presented again');
    assert.equal(stats.invalid_refresh_tokens, 0);
  }
  const account = await workos.pipes.getUserConnectedAccount({ userId: 'user_oidc', slug: 'oidc' });
  assert.equal(account.state, 'connected');
});
