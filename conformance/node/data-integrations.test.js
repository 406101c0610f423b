// The data-integrations management API through the official Node SDK (@workos-inc/node@11.0.0).
import { test, before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import {
  WorkOS,
  UnauthorizedException,
  NotFoundException,
  ConflictException,
  UnprocessableEntityException,
  GenericServerException,
} from '@workos-inc/node';
import { startPipes } from './harness.js';

let pipes;
let workos;

before(async () => {
  pipes = await startPipes();
  workos = new WorkOS(pipes.apiKey, { apiHostname: pipes.host, port: pipes.port, https: false, maxRetries: 0 });
});

after(async () => {
  await pipes?.stop();
});

beforeEach(async () => {
  const all = await (await workos.pipes.listDataIntegrations()).autoPagination();
  for (const di of all) {
    if (di.ownership === 'organization') await workos.pipes.deleteOrganizationDataIntegration({ slug: di.slug });
    else await workos.pipes.deleteDataIntegration({ slug: di.slug });
  }
});

const githubCredentials = (clientSecret = 's3cr3t-value-1234') => ({ type: 'custom', clientId: 'Iv1.abc123', clientSecret });

test('create, get, update and delete a built-in integration', async () => {
  const created = await workos.pipes.createDataIntegration({
    provider: 'github',
    credentials: githubCredentials(),
    description: 'Production GitHub app',
    scopes: ['repo', 'read:org'],
  });
  assert.equal(created.object, 'data_integration');
  assert.match(created.id, /^data_integration_[0-9A-Z]{26}$/);
  assert.equal(created.slug, 'github');
  assert.equal(created.integrationType, 'github');
  assert.equal(created.ownership, 'user');
  assert.equal(created.description, 'Production GitHub app');
  assert.equal(created.enabled, false);
  assert.equal(created.state, 'valid');
  assert.deepEqual(created.scopes, ['repo', 'read:org']);
  assert.deepEqual(created.authMethods, ['oauth']);
  assert.match(created.redirectUri, new RegExp(`^${pipes.baseUrl}/data-integrations/github/dik_[0-9A-Z]{26}/callback$`));
  assert.deepEqual(created.credentials, { type: 'custom', clientId: 'Iv1.abc123', redactedClientSecret: '1234' });
  assert.equal(created.installation, null);
  assert.deepEqual(created.config, {});
  assert.equal(created.customProvider, null);
  assert.ok(created.createdAt instanceof Date && !Number.isNaN(created.createdAt.getTime()));

  const got = await workos.pipes.getDataIntegration({ slug: 'github' });
  assert.deepEqual(got, created);

  const updated = await workos.pipes.updateDataIntegration({ slug: 'github', enabled: true, scopes: null, description: null });
  assert.equal(updated.enabled, true);
  assert.equal(updated.scopes, null);
  assert.equal(updated.description, null);
  assert.equal(updated.credentials.redactedClientSecret, '1234');

  const rotated = await workos.pipes.updateDataIntegration({ slug: 'github', credentials: githubCredentials('rotated-9876') });
  assert.equal(rotated.credentials.redactedClientSecret, '9876');

  await workos.pipes.deleteDataIntegration({ slug: 'github' });
  await assert.rejects(workos.pipes.getDataIntegration({ slug: 'github' }), (e) => {
    assert.ok(e instanceof NotFoundException);
    assert.match(e.requestID, /^req_/);
    return true;
  });
});

test('organization-owned roots live under /organization', async () => {
  const root = await workos.pipes.createDataIntegration({ provider: 'slack', ownership: 'organization', credentials: { type: 'organization' } });
  assert.equal(root.ownership, 'organization');
  assert.deepEqual(root.credentials, { type: 'organization', clientId: null, redactedClientSecret: null });
  assert.equal((await workos.pipes.getOrganizationDataIntegration({ slug: 'slack' })).id, root.id);
  const updated = await workos.pipes.updateOrganizationDataIntegration({ slug: 'slack', enabled: true });
  assert.equal(updated.enabled, true);
  await assert.rejects(workos.pipes.getDataIntegration({ slug: 'slack' }), NotFoundException);
  await workos.pipes.deleteOrganizationDataIntegration({ slug: 'slack' });
  await assert.rejects(workos.pipes.getOrganizationDataIntegration({ slug: 'slack' }), NotFoundException);
});

test('custom providers: defaults, partial updates and the shared definition', async () => {
  const created = await workos.pipes.createDataIntegration({
    provider: 'acme-crm',
    credentials: { type: 'custom', clientId: 'acme', clientSecret: 'acme-secret' },
    customProvider: {
      name: 'Acme CRM',
      authorizationUrl: 'https://auth.acme.test/oauth/authorize',
      tokenUrl: 'https://auth.acme.test/oauth/token',
      requestScopeSeparator: ',',
    },
  });
  assert.deepEqual(created.customProvider, {
    name: 'Acme CRM',
    authorizationUrl: 'https://auth.acme.test/oauth/authorize',
    tokenUrl: 'https://auth.acme.test/oauth/token',
    refreshTokenUrl: null,
    pkceEnabled: true,
    requestScopeSeparator: ',',
    scopesRequired: false,
    clientSecretRequired: true,
    additionalAuthorizationParameters: {},
    tokenBodyContentType: 'application/x-www-form-urlencoded',
    authenticateVia: 'request_body',
  });
  const updated = await workos.pipes.updateDataIntegration({
    slug: 'acme-crm',
    customProvider: { refreshTokenUrl: 'https://auth.acme.test/oauth/refresh', pkceEnabled: false },
  });
  assert.equal(updated.customProvider.refreshTokenUrl, 'https://auth.acme.test/oauth/refresh');
  assert.equal(updated.customProvider.pkceEnabled, false);
  assert.equal(updated.customProvider.requestScopeSeparator, ',', 'Node omits unset fields; they keep their values');

  const orgRoot = await workos.pipes.createDataIntegration({ provider: 'acme-crm', ownership: 'organization', credentials: { type: 'organization' } });
  assert.equal(orgRoot.customProvider.refreshTokenUrl, 'https://auth.acme.test/oauth/refresh');

  await assert.rejects(
    workos.pipes.createDataIntegration({
      provider: 'slack',
      credentials: githubCredentials(),
      customProvider: { name: 'Fake', authorizationUrl: 'https://x.test/a', tokenUrl: 'https://x.test/t' },
    }),
    (e) => {
      assert.ok(e instanceof UnprocessableEntityException);
      assert.equal(e.code, 'invalid_request_parameters');
      return true;
    },
  );
});

test('autoPagination walks every page through list_metadata.after', async () => {
  const made = [];
  for (let i = 0; i < 105; i += 1) {
    const slug = `custom-${String(i).padStart(3, '0')}`;
    made.push(slug);
    await workos.pipes.createDataIntegration({
      provider: slug,
      authMethods: ['api_key'],
      customProvider: { name: `Custom ${i}` },
    });
  }
  const firstPage = await workos.pipes.listDataIntegrations({ limit: 5 });
  assert.equal(firstPage.data.length, 5);
  assert.equal(firstPage.listMetadata.after, firstPage.data[4].id);
  const all = await (await workos.pipes.listDataIntegrations()).autoPagination();
  assert.deepEqual(all.map((d) => d.slug), [...made].reverse());
  assert.ok(all.every((d) => d.redirectUri === '' && d.credentials === null));
});

test('errors surface as the SDK exception classes', async () => {
  await workos.pipes.createDataIntegration({ provider: 'github', credentials: githubCredentials() });
  await assert.rejects(workos.pipes.createDataIntegration({ provider: 'github', credentials: githubCredentials() }), ConflictException);
  await assert.rejects(workos.pipes.createDataIntegration({ provider: 'no-such-thing', credentials: githubCredentials() }), NotFoundException);
  await assert.rejects(workos.pipes.createDataIntegration({ provider: 'gitlab' }), (e) => {
    assert.ok(e instanceof UnprocessableEntityException);
    assert.equal(e.code, 'invalid_request_parameters');
    assert.match(e.message, /must be met:\n\trequired/, 'Node builds its message from errors[].code');
    return true;
  });
  await assert.rejects(workos.pipes.updateDataIntegration({ slug: 'github', enabled: 'yes' }), (e) => {
    assert.ok(e instanceof GenericServerException);
    assert.equal(e.status, 400);
    return true;
  });
  const stranger = new WorkOS('sk_test_not_a_real_key', { apiHostname: pipes.host, port: pipes.port, https: false, maxRetries: 0 });
  await assert.rejects(stranger.pipes.listDataIntegrations(), UnauthorizedException);
});

test('no secret reaches the logs', async () => {
  const canary = 'node-log-canary-9d2f4a';
  await workos.pipes.createDataIntegration({ provider: 'github', credentials: githubCredentials(canary) });
  const logs = pipes.logs();
  assert.match(logs, /"path":"\/data-integrations"/);
  assert.ok(!logs.includes(canary));
  assert.ok(!logs.includes(pipes.apiKey));
});
