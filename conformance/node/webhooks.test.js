// Events and webhooks through the official Node SDK against a real pipes serve: endpoint
// management, the Events API, and deliveries verified with workos.webhooks.constructEvent,
// through retries and a crash of the server.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { WorkOS } from '@workos-inc/node';
import { startPipes, startProvider, startReceiver, browse, pipesBin } from './harness.js';

const CONNECTED = 'pipes.connected_account.connected';
const DISCONNECTED = 'pipes.connected_account.disconnected';

let pipes;
let provider;
let workos;
const sdk = () => new WorkOS(pipes.apiKey, { apiHostname: pipes.host, port: pipes.port, https: false, maxRetries: 0 });

before(async () => {
  pipes = await startPipes({
    PIPES_WEBHOOK_RETRY_BASE_MS: '200',
    PIPES_WEBHOOK_RETRY_MAX_SECONDS: '1',
    PIPES_WORKER_POLL_MS: '100',
  });
  provider = await startProvider('oauth2-mock-server');
  workos = sdk();
  execFileSync(pipesBin, ['redirect-uris', 'add', '--env', 'sandbox', 'http://localhost/done'], { env: pipes.env });
  await workos.pipes.createDataIntegration({
    provider: 'acme',
    enabled: true,
    scopes: ['openid'],
    credentials: { type: 'custom', clientId: 'pipes-node', clientSecret: 'pipes-node-secret' },
    customProvider: { name: 'Acme', authorizationUrl: provider.authorization_url, tokenUrl: provider.token_url },
  });
});

after(async () => {
  provider?.stop();
  await pipes?.stop();
});

async function verified(delivery, secret) {
  // As WorkOS's docs show: the parsed body (re-serialised by the SDK) and the raw body both verify.
  const fromObject = await workos.webhooks.constructEvent({ payload: JSON.parse(delivery.raw), sigHeader: delivery.signature, secret });
  const fromRaw = await workos.webhooks.constructEvent({ payload: delivery.raw, sigHeader: delivery.signature, secret });
  assert.deepEqual(fromObject, fromRaw);
  assert.equal(JSON.stringify(JSON.parse(delivery.raw)), delivery.raw, 'the body is what JSON.stringify gives');
  assert.match(delivery.signature, /^t=\d{13}, v1=[0-9a-f]{64}$/);
  return fromObject;
}

test('webhook endpoints are managed with the SDK', async () => {
  const created = await workos.webhooks.createWebhookEndpoint({ endpointUrl: 'https://hooks.example.com/a', events: [CONNECTED] });
  assert.match(created.id, /^we_/);
  assert.match(created.secret, /^whsec_[A-Za-z0-9]{32}$/);
  assert.equal(created.status, 'enabled');
  const listed = await workos.webhooks.listWebhookEndpoints();
  assert.ok(listed.data.some((e) => e.id === created.id && e.secret === created.secret));
  const disabled = await workos.webhooks.updateWebhookEndpoint({ id: created.id, status: 'disabled', events: [CONNECTED, DISCONNECTED] });
  assert.equal(disabled.status, 'disabled');
  assert.deepEqual(disabled.events, [CONNECTED, DISCONNECTED]);
  await assert.rejects(
    workos.webhooks.createWebhookEndpoint({ endpointUrl: 'https://hooks.example.com/a', events: [CONNECTED] }),
    (e) => e.status === 409,
  );
  await assert.rejects(
    workos.webhooks.createWebhookEndpoint({ endpointUrl: 'http://hooks.example.com/plain', events: [CONNECTED] }),
    (e) => e.status === 422,
  );
  await workos.webhooks.deleteWebhookEndpoint({ id: created.id });
  await assert.rejects(workos.webhooks.deleteWebhookEndpoint({ id: created.id }), (e) => e.status === 404);
});

test('connect then disconnect: both events delivered in order and verified', async () => {
  const receiver = await startReceiver();
  const endpoint = await workos.webhooks.createWebhookEndpoint({ endpointUrl: receiver.url, events: [CONNECTED, DISCONNECTED] });
  const { url } = await workos.pipes.authorizeDataIntegration({ slug: 'acme', userId: 'user_hook', returnTo: 'http://localhost:4000/done' });
  await browse(url);
  await workos.pipes.deleteUserConnectedAccount({ userId: 'user_hook', slug: 'acme' });

  const deliveries = await receiver.accepted(2);
  const events = [];
  for (const d of deliveries) events.push(await verified(d, endpoint.secret));
  assert.deepEqual(events.map((e) => e.event), [CONNECTED, DISCONNECTED]);
  const [connected, disconnected] = events;
  assert.equal(connected.data.userId ?? connected.data.user_id, 'user_hook');
  assert.equal(JSON.parse(deliveries[1].raw).data.state, 'disconnected');
  assert.equal(JSON.parse(deliveries[0].raw).data.provider_slug, 'acme');

  // A tampered body, or the wrong secret, fails verification.
  const tampered = JSON.parse(deliveries[0].raw);
  tampered.data.user_id = 'user_attacker';
  await assert.rejects(workos.webhooks.constructEvent({ payload: tampered, sigHeader: deliveries[0].signature, secret: endpoint.secret }));
  await assert.rejects(workos.webhooks.constructEvent({ payload: deliveries[0].raw, sigHeader: deliveries[0].signature, secret: 'whsec_wrong' }));

  // The Events API serves the same events, oldest first.
  const listed = await workos.events.listEvents({ events: [CONNECTED, DISCONNECTED] });
  assert.deepEqual(listed.data.map((e) => e.id), events.map((e) => e.id));
  receiver.close();
  await workos.webhooks.deleteWebhookEndpoint({ id: endpoint.id });
});

test('a receiver that fails at first gets the event later, re-signed', async () => {
  const receiver = await startReceiver();
  receiver.failNext(2);
  const endpoint = await workos.webhooks.createWebhookEndpoint({ endpointUrl: receiver.url, events: [CONNECTED] });
  await workos.pipes.createUserConnectedAccount({ userId: 'user_retry', slug: 'acme', accessToken: 'at_retry' });
  const [delivery] = await receiver.accepted(1);
  assert.equal(receiver.received.length, 3);
  assert.ok(receiver.received.every((r) => r.raw === delivery.raw), 'the same bytes each time');
  const event = await verified(delivery, endpoint.secret);
  assert.equal(event.event, CONNECTED);
  receiver.close();
  await workos.webhooks.deleteWebhookEndpoint({ id: endpoint.id });
});

test('deliveries pending when the server is killed go out after it restarts', async () => {
  const receiver = await startReceiver();
  receiver.failNext(1_000_000);
  const endpoint = await workos.webhooks.createWebhookEndpoint({ endpointUrl: receiver.url, events: [CONNECTED] });
  for (const user of ['user_k1', 'user_k2', 'user_k3']) {
    await workos.pipes.createUserConnectedAccount({ userId: user, slug: 'acme', accessToken: `at_${user}` });
  }
  while (receiver.received.length === 0) await new Promise((r) => setTimeout(r, 20));
  await pipes.kill();
  receiver.failNext(0);
  await pipes.restart();
  workos = sdk();
  const deliveries = await receiver.accepted(3, 45000);
  const users = [];
  for (const d of deliveries) users.push((await verified(d, endpoint.secret)).data.userId ?? JSON.parse(d.raw).data.user_id);
  assert.deepEqual(users, ['user_k1', 'user_k2', 'user_k3']);
  receiver.close();
});

test('a server killed in the middle of a delivery: another takes over when its lease expires', async () => {
  const receiver = await startReceiver();
  receiver.hang(true);
  const endpoint = await workos.webhooks.createWebhookEndpoint({ endpointUrl: receiver.url, events: [CONNECTED] });
  await workos.pipes.createUserConnectedAccount({ userId: 'user_mid', slug: 'acme', accessToken: 'at_mid' });
  while (receiver.received.length === 0) await new Promise((r) => setTimeout(r, 20));
  await pipes.kill();
  receiver.hang(false);
  await pipes.restart();
  workos = sdk();
  const [delivery] = await receiver.accepted(1, 60000);
  const event = await verified(delivery, endpoint.secret);
  assert.equal(event.id, JSON.parse(receiver.received[0].raw).id, 'the duplicate carries the same event id');
  receiver.close();
});
