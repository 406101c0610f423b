// API-key and client-credentials connections, shared (organization-owned) connections and
// multiple connections through the official Node SDK (@workos-inc/node@11.0.0).
import { test, before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import {
  WorkOS,
  NotFoundException,
  ConflictException,
  UnprocessableEntityException,
} from '@workos-inc/node';
import { execFileSync } from 'node:child_process';
import { pipesBin, startPipes, startProvider } from './harness.js';

let pipes;
let workos;
let provider;

const uid = (prefix) => `${prefix}_${randomUUID().replaceAll('-', '').slice(0, 12)}`;
const settings = (...flags) => execFileSync(pipesBin, ['env', 'settings', 'sandbox', ...flags], { env: pipes.env });

before(async () => {
  pipes = await startPipes();
  provider = await startProvider();
  workos = new WorkOS(pipes.apiKey, { apiHostname: pipes.host, port: pipes.port, https: false, maxRetries: 0 });
});

after(async () => {
  await provider?.stop();
  await pipes?.stop();
});

beforeEach(async () => {
  settings('--multiple-connections', 'off', '--membership', 'trust');
  const all = await (await workos.pipes.listDataIntegrations()).autoPagination();
  for (const di of all) {
    if (di.ownership === 'organization') await workos.pipes.deleteOrganizationDataIntegration({ slug: di.slug });
    else await workos.pipes.deleteDataIntegration({ slug: di.slug });
  }
});

async function apiKeyRoot(ownership = 'user') {
  await workos.pipes.createDataIntegration({
    provider: 'keyed',
    ownership,
    enabled: true,
    authMethods: ['api_key'],
    customProvider: { name: 'Keyed' },
  });
}

test('API keys: create, rotate, add, select and vend', async () => {
  const userId = uid('user');
  await apiKeyRoot();
  const first = await workos.pipes.updateDataIntegrationApiKey({ slug: 'keyed', userId, secret: 'sk-node-0001' });
  assert.equal(first.authMethod, 'api_key');
  assert.equal(first.apiKeyLast4, '0001');
  assert.equal(first.connectionRole, 'compatibility');
  const rotated = await workos.pipes.updateDataIntegrationApiKey({ slug: 'keyed', userId, secret: 'sk-node-0002' });
  assert.equal(rotated.id, first.id);

  const vended = await workos.pipes.createDataIntegrationCredential({ slug: 'keyed', userId });
  assert.equal(vended.active, true);
  assert.equal(vended.credential.authMethod, 'api_key');
  assert.equal(vended.credential.value, 'sk-node-0002');
  await assert.rejects(
    workos.pipes.getAccessToken({ provider: 'keyed', userId }),
    (e) => e instanceof UnprocessableEntityException && e.code === 'auth_method_mismatch',
  );

  await assert.rejects(
    workos.pipes.createDataIntegrationApiKey({ slug: 'keyed', userId, secret: 'sk-node-0003', connectionIntent: 'add' }),
    (e) => e instanceof NotFoundException && e.code === 'multiple_connections_unavailable',
  );
  settings('--multiple-connections', 'on');
  const second = await workos.pipes.createDataIntegrationApiKey({
    slug: 'keyed', userId, secret: 'sk-node-0003', connectionIntent: 'add',
  });
  assert.equal(second.connectionRole, 'standard');
  await assert.rejects(
    workos.pipes.createDataIntegrationCredential({ slug: 'keyed', userId, supportsMultipleConnections: true }),
    (e) => e instanceof ConflictException,
  );
  const exact = await workos.pipes.createDataIntegrationCredential({ slug: 'keyed', userId, connectedAccountId: second.id });
  assert.equal(exact.credential.value, 'sk-node-0003');
  const relabelled = await workos.pipes.updateUserConnectedAccount({
    userId, slug: 'keyed', connectedAccountId: second.id, state: 'needs_reauthorization',
  });
  assert.equal(relabelled.state, 'needs_reauthorization');
  const after2 = await workos.pipes.createDataIntegrationCredential({ slug: 'keyed', userId, connectedAccountId: second.id });
  assert.equal(after2.active, false);
  assert.equal(after2.error, 'needs_reauthorization');
});

test('client credentials: proven at write, minted and cached when vended', async () => {
  const userId = uid('user');
  await workos.pipes.createDataIntegration({
    provider: 'machine',
    enabled: true,
    authMethods: ['client_credentials'],
    customProvider: { name: 'Machine', tokenUrl: provider.token_url },
  });
  await assert.rejects(
    workos.pipes.updateDataIntegrationClientCredentials({ slug: 'machine', userId, clientId: 'app', clientSecret: 'wrong' }),
    (e) => e instanceof UnprocessableEntityException,
  );
  const account = await workos.pipes.updateDataIntegrationClientCredentials({
    slug: 'machine', userId, clientId: 'node-tenant', clientSecret: 'node-secret-wxyz',
  });
  assert.equal(account.authMethod, 'client_credentials');
  assert.equal(account.clientId, 'node-tenant');
  assert.equal(account.clientSecretLast4, 'wxyz');
  const minted = (await provider.stats()).client_credentials;
  const vended = await workos.pipes.createDataIntegrationCredential({ slug: 'machine', userId });
  assert.equal(vended.credential.authMethod, 'client_credentials');
  assert.ok(vended.credential.value);
  assert.equal((await provider.stats()).client_credentials, minted);

  const added = await workos.pipes.createDataIntegrationClientCredential({
    slug: 'machine', userId: uid('user'), clientId: 'second', clientSecret: 'second-secret', connectionIntent: 'add',
  });
  assert.equal(added.connectionRole, 'compatibility');
  await assert.rejects(
    workos.pipes.createDataIntegrationClientCredential({
      slug: 'machine', userId, clientId: 'x', clientSecret: 'y', connectionIntent: 'reauthorize',
    }),
    // Node 11 reports a 400 as GenericServerException with its status.
    (e) => e.status === 400,
  );
});

test('shared connections: import, read, update, list and delete', async () => {
  const organizationId = uid('org');
  const userId = uid('user');
  await apiKeyRoot('organization');
  const shared = await workos.pipes.updateDataIntegrationApiKey({
    slug: 'keyed', userId, organizationId, connectionOwner: 'organization', secret: 'org-node-key',
  });
  assert.equal(shared.userId, null);
  assert.equal(shared.organizationId, organizationId);
  const got = await workos.pipes.getOrganizationConnectedAccount({ organizationId, slug: 'keyed' });
  assert.equal(got.id, shared.id);
  const providers = await workos.pipes.listOrganizationDataProviders({ organizationId });
  assert.equal(providers.data[0].connectedAccount.id, shared.id);
  const vended = await workos.pipes.createDataIntegrationCredential({
    slug: 'keyed', userId: uid('user'), organizationId, connectionOwner: 'organization',
  });
  assert.equal(vended.credential.value, 'org-node-key');
  await workos.pipes.deleteOrganizationConnectedAccount({ organizationId, slug: 'keyed' });
  await assert.rejects(workos.pipes.getOrganizationConnectedAccount({ organizationId, slug: 'keyed' }), NotFoundException);

  await workos.pipes.createDataIntegration({
    provider: 'acme',
    ownership: 'organization',
    enabled: true,
    credentials: { type: 'custom', clientId: 'c', clientSecret: 's' },
    customProvider: { name: 'Acme', authorizationUrl: provider.authorization_url, tokenUrl: provider.token_url },
  });
  const imported = await workos.pipes.createOrganizationConnectedAccount({
    organizationId, slug: 'acme', userId, accessToken: 'org-at', scopes: ['read'],
  });
  assert.equal(imported.userId, null);
  const updated = await workos.pipes.updateOrganizationConnectedAccount({
    organizationId, slug: 'acme', userId, scopes: ['read', 'write'],
  });
  assert.deepEqual(updated.scopes, ['read', 'write']);
  const token = await workos.pipes.getAccessToken({ provider: 'acme', userId, organizationId, connectionOwner: 'organization' });
  assert.equal(token.active, true);
  assert.equal(token.accessToken.accessToken, 'org-at');
});

test('widget tokens: minted for members, refused with the contract errors', async () => {
  const organizationId = uid('org');
  const userId = uid('user');
  const { token } = await workos.widgets.createToken({ organizationId, userId, scopes: ['widgets:pipes:manage'] });
  const [header, claims] = token
    .split('.')
    .slice(0, 2)
    .map((part) => JSON.parse(Buffer.from(part, 'base64url').toString()));
  assert.equal(header.alg, 'HS256');
  assert.deepEqual(
    { aud: claims.aud, sub: claims.sub, org: claims.org_id, scopes: claims.scopes, ttl: claims.exp - claims.iat },
    { aud: 'widgets', sub: userId, org: organizationId, scopes: ['widgets:pipes:manage'], ttl: 3600 },
  );

  await assert.rejects(
    workos.widgets.createToken({ organizationId, scopes: ['widgets:no-such:scope'] }),
    UnprocessableEntityException,
  );
  settings('--membership', 'registry');
  await assert.rejects(workos.widgets.createToken({ organizationId, userId }), NotFoundException);
});
