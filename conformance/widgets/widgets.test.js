// WorkOS's own <Pipes/> and <PipesAdmin/> widgets (@workos-inc/widgets@1.18.0) in headless
// Chromium, against a live `pipes dev` and its mock OAuth provider. The page is served on its own
// loopback origin and mints widget tokens with the official Node SDK, so every call crosses
// origins as it would in production. Screenshots of each state go to $WIDGETS_ARTIFACTS
// (default: ./artifacts).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { startPipesDev } from './pipes.js';
import { startHostApp } from './server.js';

const artifacts = process.env.WIDGETS_ARTIFACTS ?? join(import.meta.dirname, 'artifacts');
mkdirSync(artifacts, { recursive: true });

let pipes;
let host;
let browser;

before(async () => {
  pipes = await startPipesDev();
  host = await startHostApp(pipes);
  pipes.cli('origins', 'add', '--env', 'sandbox', host.origin);
  pipes.cli('env', 'settings', 'sandbox', '--team-name', 'Acme Notes', '--logo-url', `${host.origin}/logo.svg`);
  const integrations = [
    {
      provider: 'keyed', enabled: true, auth_methods: ['api_key'],
      description: 'Paste an API key from your Keyed settings.', custom_provider: { name: 'Keyed' },
    },
    {
      provider: 'minted', enabled: true, auth_methods: ['client_credentials'],
      custom_provider: { name: 'Minted', token_url: `${pipes.mockUrl}/token` },
    },
    {
      provider: 'team-keys', ownership: 'organization', enabled: true, auth_methods: ['api_key'],
      description: 'One key for the whole team.', custom_provider: { name: 'Team Keys' },
    },
    { provider: 'github', enabled: true, scopes: ['repo', 'read:user'], credentials: { type: 'organization' } },
  ];
  for (const body of integrations) {
    const { status, body: answer } = await pipes.api('POST', '/data-integrations', body);
    assert.equal(status, 201, JSON.stringify(answer));
  }
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
      '--disable-sync', '--no-first-run', '--disable-quic'],
  });
});

after(async () => {
  await browser?.close();
  host?.close();
  await pipes?.stop();
});

/** A page of the host app showing a widget; records the widget API calls it makes. */
async function open(query, origin = host.origin) {
  const context = await browser.newContext({ viewport: { width: 1000, height: 640 } });
  const page = await context.newPage();
  const calls = [];
  const visits = [];
  page.on('response', (r) => {
    if (r.url().includes('/_widgets/')) calls.push(`${r.status()} ${r.request().method()} ${new URL(r.url()).pathname}`);
  });
  // Every page of the context, popups included, from their first request.
  context.on('request', (r) => {
    if (r.isNavigationRequest()) visits.push(`${r.method()} ${r.url()}`);
  });
  const params = new URLSearchParams({ api: `${pipes.host}:${pipes.port}`, ...query });
  await page.goto(`${origin}/?${params}`);
  return { context, page, calls, visits };
}

const shot = (page, name) => page.screenshot({ path: join(artifacts, `${name}.png`) });

/** The row of a provider in the list. */
function row(page, name) {
  return page.locator('div', { hasText: name }).filter({ has: page.getByRole('button') }).last();
}

/** What the list says now: the widget re-reads it when its tab becomes visible again. */
async function refocus(page) {
  await page.evaluate(() => document.dispatchEvent(new Event('visibilitychange', { bubbles: true })));
}

/** Opens a row's action menu (or its single button) and picks `action`. */
async function act(page, provider, action) {
  const r = row(page, provider);
  const direct = r.getByRole('button', { name: action, exact: true });
  if (await direct.count()) return direct.click();
  await r.getByRole('button').last().click();
  await page.getByRole('menuitem', { name: action }).click();
}

/** Connects through the popup: the dialog's Connect, the handoff page, the mock provider. */
async function connectInPopup(context, page) {
  const popupOpened = context.waitForEvent('page');
  await page.getByRole('dialog').getByRole('button', { name: 'Connect' }).click();
  const popup = await popupOpened;
  await popup.getByText('is connected').waitFor({ timeout: 20000 });
  return popup;
}

test('members see the configured providers and connect one through the popup', async () => {
  const { context, page, calls, visits } = await open({ widget: 'pipes', user: 'user_1', org: 'org_1' });
  for (const name of ['Keyed', 'Minted', 'Mock Provider', 'GitHub']) await page.getByText(name, { exact: true }).waitFor();
  assert.equal(await row(page, 'Mock Provider').getByText('Not connected').count(), 1);
  await shot(page, '01-member-list');

  await row(page, 'Mock Provider').getByRole('button', { name: 'Connect' }).click();
  await page.getByRole('dialog').getByText('Acme Notes uses WorkOS to connect to Mock Provider').waitFor();
  await shot(page, '02-connect-dialog');
  const popup = await connectInPopup(context, page);
  // The popup's way: Pipes' placeholder, the handoff page, the handoff posted back, the
  // provider, Pipes' callback.
  const way = visits
    .filter((v) => !v.includes(host.origin))
    .map((v) => v.replace(/\?.*/, '').replace(pipes.baseUrl, 'pipes').replace(pipes.mockUrl, 'provider'));
  const expected = [
    /^GET pipes\/pipes\/redirecting$/,
    /^GET pipes\/data-integrations\/\w+\/authorize-redirect$/,
    /^POST pipes\/data-integrations\/\w+\/authorize-redirect$/,
    /^GET provider\/authorize$/,
    /^GET pipes\/data-integrations\/mock\/dik_\w+\/callback$/,
  ];
  assert.equal(way.length, expected.length, way.join('\n'));
  expected.forEach((step, i) => assert.match(way[i], step));
  await shot(popup, '03-popup-connected');
  await popup.close();
  await refocus(page);
  await row(page, 'Mock Provider').getByText('Connected', { exact: true }).waitFor();
  await shot(page, '04-member-connected');
  assert.ok(calls.includes('200 POST /_widgets/DataIntegrations/mock/authorize'), calls.join('\n'));
  await context.close();
});

test('an API key is connected, then rotated', async () => {
  const { context, page } = await open({ widget: 'pipes', user: 'user_1', org: 'org_1' });
  await row(page, 'Keyed').getByRole('button', { name: 'Connect' }).click();
  const dialog = page.getByRole('dialog');
  await dialog.getByText('Paste an API key from your Keyed settings.').waitFor();
  await dialog.getByRole('textbox').first().fill('keyed_first_1111');
  await shot(page, '05-api-key-dialog');
  await dialog.getByRole('button', { name: /connect|save/i }).last().click();
  await row(page, 'Keyed').getByText('Connected', { exact: true }).waitFor();
  await act(page, 'Keyed', 'Rotate API key');
  await page.getByRole('dialog').getByRole('textbox').first().fill('keyed_second_2222');
  await page.getByRole('dialog').getByRole('button', { name: /save|update|rotate|connect/i }).last().click();
  await page.getByRole('dialog').waitFor({ state: 'detached' });
  const { body } = await pipes.api('POST', '/data-integrations/keyed/credentials', { user_id: 'user_1', organization_id: 'org_1' });
  assert.equal(body.credential?.value, 'keyed_second_2222', JSON.stringify(body));
  await context.close();
});

test('client credentials are connected after the provider accepts them', async () => {
  const { context, page } = await open({ widget: 'pipes', user: 'user_1', org: 'org_1' });
  await row(page, 'Minted').getByRole('button', { name: 'Connect' }).click();
  const dialog = page.getByRole('dialog');
  const boxes = dialog.locator('input');
  await boxes.first().waitFor();
  await boxes.nth(0).fill('pipes-dev-client');
  await boxes.nth(1).fill('wrong-secret');
  await dialog.getByRole('button', { name: /connect|save/i }).last().click();
  await dialog.getByText(/rejected/i).waitFor();
  await shot(page, '06-client-credentials-rejected');
  await boxes.nth(1).fill('pipes-dev-secret');
  await dialog.getByRole('button', { name: /connect|save/i }).last().click();
  await row(page, 'Minted').getByText('Connected', { exact: true }).waitFor();
  await context.close();
});

test('a connection that needs reauthorization says so, and Reauthorize fixes it', async () => {
  const path = '/user_management/users/user_1/connected_accounts/mock?organization_id=org_1';
  const { status } = await pipes.api('PUT', path, { state: 'needs_reauthorization' });
  assert.equal(status, 200);
  const { context, page } = await open({ widget: 'pipes', user: 'user_1', org: 'org_1' });
  await row(page, 'Mock Provider').getByText('Requires reauthorization').waitFor();
  await shot(page, '07-needs-reauthorization');
  const popupOpened = context.waitForEvent('page');
  await act(page, 'Mock Provider', 'Reauthorize');
  const popup = await popupOpened;
  await popup.getByText('is connected').waitFor({ timeout: 20000 });
  await popup.close();
  await refocus(page);
  await row(page, 'Mock Provider').getByText('Connected', { exact: true }).waitFor();
  await context.close();
});

test('Disconnect removes the connection', async () => {
  const { context, page } = await open({ widget: 'pipes', user: 'user_1', org: 'org_1' });
  await row(page, 'Mock Provider').getByText('Connected', { exact: true }).waitFor();
  await act(page, 'Mock Provider', 'Disconnect');
  const confirm = page.getByRole('alertdialog');
  if (await confirm.count()) await confirm.getByRole('button', { name: /disconnect/i }).click();
  await row(page, 'Mock Provider').getByText('Not connected').waitFor();
  const { body } = await pipes.api('POST', '/data-integrations/mock/token', { user_id: 'user_1', organization_id: 'org_1' });
  assert.deepEqual(body, { active: false, error: 'not_installed' });
  await context.close();
});

const admin = { widget: 'admin', user: 'admin_1', org: 'org_1', manage: '1', shared: '1' };

/** The organization's settings as the API-key API reports them. */
async function configuration(slug) {
  const { body } = await pipes.api('GET', '/organizations/org_1/data_integration_configurations');
  return body.data.find((c) => c.slug === slug);
}

test('an administrator changes scopes, disables and enables a provider, and sets the OAuth app', async () => {
  const { context, page } = await open(admin);
  await row(page, 'Mock Provider').getByRole('button', { name: 'Configure' }).click();
  let dialog = page.getByRole('dialog');
  await dialog.getByText('Allowed scopes').waitFor();
  await dialog.getByRole('checkbox', { name: 'email' }).click();
  await shot(page, '08-admin-scopes');
  await dialog.getByRole('button', { name: 'Save' }).click();
  await dialog.waitFor({ state: 'detached' });
  assert.deepEqual((await configuration('mock')).scopes, ['profile']);

  await row(page, 'Mock Provider').getByRole('button', { name: 'Configure' }).click();
  await page.getByRole('dialog').getByRole('switch').click();
  await page.getByRole('dialog').getByRole('button', { name: 'Save' }).click();
  await row(page, 'Mock Provider').getByText('Disabled for your organization').waitFor();
  await shot(page, '09-admin-disabled');
  assert.equal((await configuration('mock')).enabled, false);
  const member = await open({ widget: 'pipes', user: 'user_2', org: 'org_1' });
  await member.page.getByText('Keyed', { exact: true }).waitFor();
  assert.equal(await member.page.getByText('Mock Provider', { exact: true }).count(), 0, 'hidden from members');
  await member.context.close();
  await row(page, 'Mock Provider').getByRole('button', { name: 'Configure' }).click();
  await page.getByRole('dialog').getByRole('switch').click();
  await page.getByRole('dialog').getByRole('button', { name: 'Save' }).click();
  await page.getByRole('dialog').waitFor({ state: 'detached' });
  assert.equal((await configuration('mock')).enabled, true);

  // GitHub uses each organization's own OAuth app: not configured until the admin sets it.
  await row(page, 'GitHub').getByText('Not configured').waitFor();
  await row(page, 'GitHub').getByRole('button', { name: 'Configure' }).click();
  dialog = page.getByRole('dialog');
  const redirect = await dialog.getByText('/callback').innerText();
  assert.ok(redirect.startsWith(pipes.baseUrl), redirect);
  await dialog.locator('input').nth(0).fill('Iv1.org1client');
  await dialog.locator('input').nth(1).fill('org1-github-secret');
  await shot(page, '10-admin-oauth-app');
  await dialog.getByRole('button', { name: 'Next' }).click();
  await dialog.getByRole('button', { name: 'Save' }).click();
  await dialog.waitFor({ state: 'detached' });
  await refocus(page);
  const github = await configuration('github');
  assert.equal(github.credentials.has_credentials, true, JSON.stringify(github));
  assert.equal(github.credentials.client_id, 'Iv1.org1client');
  assert.ok(!JSON.stringify(github).includes('org1-github-secret'));
  await context.close();
});

test('an administrator connects a shared connection that members see as available', async () => {
  const { context, page } = await open(admin);
  await row(page, 'Team Keys').getByRole('button', { name: 'Connect' }).click();
  const dialog = page.getByRole('dialog');
  await dialog.getByText('Connect Team Keys with API key').waitFor();
  await dialog.locator('input').first().fill('team_key_4242');
  await dialog.getByRole('button', { name: 'Connect' }).click();
  await row(page, 'Team Keys').getByText(/Connected/).waitFor();
  await shot(page, '11-admin-shared-connected');
  await context.close();

  const member = await open({ widget: 'pipes', user: 'user_2', org: 'org_1', shared: '1' });
  await member.page.getByText('Shared connections').waitFor();
  await row(member.page, 'Team Keys').getByText('Available').waitFor();
  await shot(member.page, '12-member-shared-available');
  await member.context.close();
});

test('a token without widgets:pipes:manage gets no admin data', async () => {
  const { context, page, calls } = await open({ widget: 'admin', user: 'user_2', org: 'org_1' });
  await page.getByText(/Authorization error|Incorrect permissions/).waitFor({ timeout: 20000 });
  await shot(page, '13-admin-without-permission');
  assert.ok(!calls.some((c) => c.startsWith('200')), calls.join('\n'));
  await context.close();
});

test('a page on an origin the environment does not allow gets nothing', async () => {
  const stranger = await startHostApp(pipes);
  try {
    const { context, page, calls } = await open({ widget: 'pipes', user: 'user_1', org: 'org_1' }, stranger.origin);
    await page.getByText(/Error fetching data|error/i).first().waitFor({ timeout: 20000 });
    await shot(page, '14-origin-not-allowed');
    assert.ok(!calls.some((c) => c.startsWith('200')), calls.join('\n'));
    assert.equal(await page.getByText('Keyed', { exact: true }).count(), 0);
    await context.close();
  } finally {
    stranger.close();
  }
});

test('apps without React: the hosted connect page in a popup, light and dark', async () => {
  const { status, body } = await pipes.api('POST', '/pipes/connect_sessions', {
    user_id: 'user_3', organization_id: 'org_1', providers: ['keyed', 'mock'], opener_origin: host.origin,
  });
  assert.equal(status, 201, JSON.stringify(body));
  for (const colorScheme of ['light', 'dark']) {
    const context = await browser.newContext({ viewport: { width: 1000, height: 640 }, colorScheme });
    const page = await context.newPage();
    await page.goto(`${host.origin}/?widget=none`);
    const popupOpened = context.waitForEvent('page');
    const session = colorScheme === 'light' ? body : (await pipes.api('POST', '/pipes/connect_sessions', {
      user_id: 'user_4', providers: ['keyed', 'mock'], opener_origin: host.origin,
    })).body;
    await page.evaluate((url) => {
      window.received = [];
      window.addEventListener('message', (e) => window.received.push({ origin: e.origin, data: e.data }));
      window.open(url, 'pipes-connect', 'width=520,height=720');
    }, session.url);
    const popup = await popupOpened;
    await popup.getByRole('heading', { name: 'Your connections' }).waitFor();
    assert.ok(!popup.url().includes('code='), `the code leaves the address bar: ${popup.url()}`);
    await popup.setViewportSize({ width: 520, height: 720 });
    await shot(popup, `15-hosted-page-${colorScheme}`);
    await popup.locator('#key-keyed').fill(`hosted_key_${colorScheme}`);
    await popup.locator('form[action="/pipes/connect/keyed/api-key"]').getByRole('button').click();
    await popup.getByText('Connected', { exact: true }).waitFor();
    // Done tells the opener and closes the popup, maybe before the click action returns.
    const closed = popup.waitForEvent('close');
    await popup
      .getByRole('button', { name: 'Done' })
      .click({ noWaitAfter: true })
      .catch((e) => {
        if (!popup.isClosed()) throw e;
      });
    await closed;
    const received = await page.evaluate(() => window.received);
    assert.deepEqual(received, [{ origin: pipes.baseUrl, data: { type: 'pipes:connect', status: 'done' } }]);
    await context.close();
  }
  const { body: vended } = await pipes.api('POST', '/data-integrations/keyed/credentials', { user_id: 'user_3', organization_id: 'org_1' });
  assert.equal(vended.credential?.value, 'hosted_key_light', JSON.stringify(vended));
});
