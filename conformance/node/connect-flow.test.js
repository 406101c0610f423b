// A whole connection through the official Node SDK against a real pipes serve, with
// oauth2-mock-server (rotating refresh tokens with reuse detection) as the provider.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { WorkOS } from '@workos-inc/node';
import { startPipes, startProvider, browse, pipesBin } from './harness.js';

let pipes;
let provider;
let workos;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

before(async () => {
  pipes = await startPipes();
  provider = await startProvider('oauth2-mock-server');
  workos = new WorkOS(pipes.apiKey, { apiHostname: pipes.host, port: pipes.port, https: false, maxRetries: 0 });
  execFileSync(pipesBin, ['redirect-uris', 'add', '--env', 'sandbox', 'http://localhost/done'], { env: pipes.env });
  await workos.pipes.createDataIntegration({
    provider: 'acme',
    enabled: true,
    scopes: ['openid', 'profile'],
    credentials: { type: 'custom', clientId: 'pipes-node', clientSecret: 'pipes-node-secret' },
    customProvider: { name: 'Acme', authorizationUrl: provider.authorization_url, tokenUrl: provider.token_url },
  });
});

after(async () => {
  provider?.stop();
  await pipes?.stop();
});

test('connect, vend, expire, refresh once for 50 concurrent callers', async () => {
  const { url } = await workos.pipes.authorizeDataIntegration({ slug: 'acme', userId: 'user_node', returnTo: 'http://localhost:4000/done' });
  assert.match(url, new RegExp(`^${pipes.baseUrl}/data-integrations/[A-Za-z0-9]+/authorize-redirect$`));
  const back = await browse(url);
  assert.equal(back.origin + back.pathname, 'http://localhost:4000/done');
  // The link's id is its secret: the access log shows the route, never the id.
  const linkId = url.split('/').at(-2);
  assert.ok(pipes.logs().includes('/data-integrations/{id}/authorize-redirect'));
  assert.ok(!pipes.logs().includes(linkId), 'the link id is not logged');
  assert.ok(back.searchParams.get('state'));
  assert.equal(back.searchParams.get('error'), null);

  const first = await workos.pipes.getAccessToken({ provider: 'acme', userId: 'user_node' });
  assert.equal(first.active, true);
  // The provider grants its own scope set ("dummy"): Pipes reports it and what is missing.
  assert.deepEqual(first.accessToken.scopes, ['dummy']);
  assert.deepEqual(first.accessToken.missingScopes, ['openid', 'profile']);
  assert.ok(first.accessToken.expiresAt instanceof Date);

  const providers = await workos.pipes.listUserDataProviders({ userId: 'user_node' });
  const acme = providers.data.find((p) => p.slug === 'acme');
  assert.equal(acme.connectedAccount.state, 'connected');

  // Short-lived tokens from now on: the next connection expires within seconds.
  await provider.setTtl(2);
  const second = await workos.pipes.authorizeDataIntegration({ slug: 'acme', userId: 'user_node2', returnTo: 'http://localhost:4000/done' });
  await browse(second.url);
  const fresh = await workos.pipes.getAccessToken({ provider: 'acme', userId: 'user_node2' });
  await provider.setTtl(3600);
  await sleep(2200);
  const before = await provider.stats();
  const answers = await Promise.all(
    Array.from({ length: 50 }, () => workos.pipes.getAccessToken({ provider: 'acme', userId: 'user_node2' })),
  );
  const after = await provider.stats();
  assert.ok(answers.every((a) => a.active === true));
  const tokens = new Set(answers.map((a) => a.accessToken.accessToken));
  assert.equal(tokens.size, 1, '50 identical answers');
  assert.notEqual([...tokens][0], fresh.accessToken.accessToken, 'a refreshed token');
  assert.equal(after.refreshes - before.refreshes, 1, 'exactly one refresh at the provider');
  assert.equal(after.reused_refresh_tokens, 0, 'a refresh token is never reused');
  assert.equal(after.invalid_refresh_tokens, 0);
});

test('a disconnected account is not installed any more', async () => {
  const { url } = await workos.pipes.authorizeDataIntegration({ slug: 'acme', userId: 'user_gone', returnTo: 'http://localhost:4000/done' });
  await browse(url);
  const account = await workos.pipes.getUserConnectedAccount({ userId: 'user_gone', slug: 'acme' });
  assert.equal(account.state, 'connected');
  await workos.pipes.deleteUserConnectedAccount({ userId: 'user_gone', slug: 'acme' });
  const token = await workos.pipes.getAccessToken({ provider: 'acme', userId: 'user_gone' });
  assert.deepEqual(token, { active: false, error: 'not_installed' });
});
