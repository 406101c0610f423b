// Starts a real `pipes serve` for the conformance suite: temp SQLite database, a vault key,
// an environment and an API key made with the CLI, exactly as an operator would.
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, createWriteStream, existsSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const pipesBin = process.env.PIPES_BIN ?? join(root, 'target', 'debug', 'pipes');

// The secrets canary: every secret and token that crosses `fetch` as a JSON field (API keys,
// provider tokens, client and webhook secrets, widget tokens) is remembered; when a server
// stops, its database file, WAL, shared memory and log must hold none of them in plaintext.
const SECRET_FIELDS = new Set(['access_token', 'refresh_token', 'client_secret', 'secret', 'api_key', 'token']);
const known = new Set();

export function remember(value) {
  if (typeof value === 'string' && value.length >= 10) known.add(value);
}

function rememberFields(value) {
  if (Array.isArray(value)) value.forEach(rememberFields);
  else if (value && typeof value === 'object') {
    for (const [k, v] of Object.entries(value)) {
      if (SECRET_FIELDS.has(k) && typeof v === 'string') remember(v);
      else rememberFields(v);
    }
  }
}

function rememberJson(text) {
  try {
    rememberFields(JSON.parse(text));
  } catch {
    // not JSON
  }
}

let watching = false;
function watchFetch() {
  if (watching) return;
  watching = true;
  const original = globalThis.fetch;
  globalThis.fetch = async (input, init) => {
    if (typeof init?.body === 'string') rememberJson(init.body);
    const response = await original(input, init);
    response.clone().text().then(rememberJson, () => {});
    return response;
  };
}

function checkCanary(databaseFile, logPath) {
  const read = (path) => (existsSync(path) ? readFileSync(path) : Buffer.alloc(0));
  const database = Buffer.concat(['', '-wal', '-shm'].map((suffix) => read(`${databaseFile}${suffix}`)));
  const log = read(logPath);
  const found = [];
  for (const secret of known) {
    if (database.includes(secret)) found.push(`${secret.slice(0, 6)}… in the database`);
    if (log.includes(secret)) found.push(`${secret.slice(0, 6)}… in the log`);
  }
  if (found.length) throw new Error(`secrets canary: ${found.length} of ${known.size} secrets in plaintext: ${found.join(', ')}`);
  if (!known.size) throw new Error('the canary saw no secret at all: it is not watching');
}

// `settings`: extra PIPES_* variables (short webhook retries, …).
export async function startPipes(settings = {}) {
  watchFetch();
  const dir = mkdtempSync(join(tmpdir(), 'pipes-conformance-node-'));
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('PIPES_')));
  Object.assign(env, {
    PIPES_DATABASE_URL: `sqlite://${join(dir, 'pipes.db')}`,
    PIPES_LISTEN: '127.0.0.1:0',
    PIPES_LOG_FORMAT: 'json',
    PIPES_LOG: 'debug',
    // The suites count the refreshes callers cause; the background refresh worker (tested in the
    // Rust suites and the fault test) would add its own.
    PIPES_REFRESH_AHEAD_SECONDS: '0',
    // The mock providers and webhook receivers listen on loopback, which Pipes refuses to call
    // unless allowed.
    PIPES_EGRESS_ALLOW_CIDRS: '127.0.0.0/8,::1/128',
    ...settings,
  });
  const cli = (...args) => execFileSync(pipesBin, args, { env, encoding: 'utf8' });
  env.PIPES_VAULT_KEYS = cli('vault', 'generate-key', '--kid', 'conformance').trim();
  const created = cli('env', 'create', 'sandbox');
  const clientId = created.split('\n').find((l) => l.startsWith('client id')).split(/\s+/).pop();
  const apiKey = cli('keys', 'create', '--env', 'sandbox').trim().split('\n').pop();
  remember(apiKey);

  const logPath = join(dir, 'server.log');
  const log = createWriteStream(logPath);
  const launch = async () => {
    const child = spawn(pipesBin, ['serve'], { env, stdio: ['ignore', 'ignore', 'pipe'] });
    const address = await new Promise((resolveAddress, reject) => {
      const timer = setTimeout(() => reject(new Error('pipes serve did not start')), 30000);
      child.on('exit', (code) => reject(new Error(`pipes serve exited with ${code}`)));
      createInterface({ input: child.stderr }).on('line', (line) => {
        log.write(line + '\n');
        try {
          const record = JSON.parse(line);
          if (record.message === 'pipes is serving') {
            clearTimeout(timer);
            resolveAddress(record.listen);
          }
        } catch {
          // not JSON: ignore
        }
      });
    });
    return { child, address };
  };
  const ended = (child, signal) => new Promise((done) => {
    child.removeAllListeners('exit');
    if (child.exitCode !== null || child.signalCode !== null) return done();
    child.on('exit', () => done());
    child.kill(signal);
  });
  let running = await launch();
  const [host, port] = running.address.split(':');
  const server = {
    host,
    port: Number(port),
    baseUrl: `http://${running.address}`,
    apiKey,
    clientId,
    env,
    logs: () => readFileSync(logPath, 'utf8'),
    stop: async () => {
      await ended(running.child, 'SIGTERM');
      checkCanary(join(dir, 'pipes.db'), logPath);
    },
    // A crash: no shutdown, no lease released.
    kill: () => ended(running.child, 'SIGKILL'),
    // Serves the same database again (on a new port, reflected in host/port/baseUrl).
    restart: async () => {
      running = await launch();
      const [h, p] = running.address.split(':');
      Object.assign(server, { host: h, port: Number(p), baseUrl: `http://${running.address}` });
    },
  };
  return server;
}

// A webhook receiver on a loopback port: records each request's raw body and signature header;
// can answer 500 to the next requests (`failNext`) or hold them unanswered (`hang`).
export async function startReceiver() {
  const { createServer } = await import('node:http');
  const received = [];
  let failNext = 0;
  let hang = false;
  const waiters = [];
  const server = createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      if (hang) {
        received.push({ raw: Buffer.concat(chunks).toString('utf8'), signature: req.headers['workos-signature'], accepted: false });
        return; // never answered
      }
      const fail = failNext > 0;
      if (fail) failNext -= 1;
      received.push({ raw: Buffer.concat(chunks).toString('utf8'), signature: req.headers['workos-signature'], accepted: !fail });
      res.writeHead(fail ? 500 : 200).end(fail ? 'not now' : 'ok');
      for (const w of waiters.splice(0)) w();
    });
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${server.address().port}/webhooks`;
  return {
    url,
    received,
    failNext: (n) => { failNext = n; },
    // Holds requests without answering (true) or answers again (false).
    hang: (on) => { hang = on; },
    // Resolves with the accepted deliveries once there are `n` (rejects after `ms`).
    accepted: (n, ms = 15000) => new Promise((resolveAll, reject) => {
      const deadline = setTimeout(() => reject(new Error(`only ${received.filter((r) => r.accepted).length} of ${n} deliveries accepted`)), ms);
      const check = () => {
        const ok = received.filter((r) => r.accepted);
        if (ok.length >= n) {
          clearTimeout(deadline);
          resolveAll(ok);
        } else waiters.push(check);
      };
      check();
    }),
    close: () => {
      server.closeAllConnections();
      return new Promise((r) => server.close(r));
    },
  };
}

// Starts a third-party OAuth server (see providers.js) and returns its endpoints and a stats reader.
export async function startProvider(kind = 'oauth2-mock-server', ...args) {
  const here = dirname(fileURLToPath(import.meta.url));
  const child = spawn(process.execPath, [join(here, 'providers.js'), kind, ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
  const info = await new Promise((resolveInfo, reject) => {
    child.on('exit', (code) => reject(new Error(`provider exited with ${code}`)));
    createInterface({ input: child.stdout }).once('line', (line) => resolveInfo(JSON.parse(line)));
  });
  return {
    ...info,
    stats: async () => (await fetch(`${info.control_url}/stats`)).json(),
    setTtl: async (seconds) => fetch(`${info.control_url}/ttl?seconds=${seconds}`),
    stop: () => {
      child.removeAllListeners('exit');
      child.kill('SIGTERM');
    },
  };
}

// Follows the browser part of a connection by hand: the hosted page (confirming when it asks),
// the provider (signing in and consenting on its own pages when it has them, with a cookie jar),
// and the callback, as the same browser (with the cookie Pipes set on the way to the provider).
// Returns the final redirect target.
export async function browse(url) {
  const noFollow = { redirect: 'manual' };
  let res = await fetch(url, noFollow);
  if (res.status === 200) {
    const html = await res.text();
    const csrf = /name="csrf_token" value="([^"]+)"/.exec(html)[1];
    res = await fetch(url, {
      ...noFollow,
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ csrf_token: csrf, action: 'continue' }),
    });
  }
  if (res.status !== 302) throw new Error(`expected a redirect to the provider, got ${res.status}`);
  // The cookie Pipes gives the browser on its way to the provider; the callback wants it back.
  const flowCookie = res.headers.getSetCookie().map((c) => c.split(';')[0]).join('; ');
  const jar = new Map();
  let next = res.headers.get('location');
  let form;
  for (let step = 0; step < 12; step += 1) {
    const headers = { cookie: [...jar].map(([k, v]) => `${k}=${v}`).join('; ') };
    if (form) headers['content-type'] = 'application/x-www-form-urlencoded';
    const at = await fetch(next, { ...noFollow, method: form ? 'POST' : 'GET', headers, body: form });
    for (const c of at.headers.getSetCookie()) {
      const [pair] = c.split(';');
      const eq = pair.indexOf('=');
      jar.set(pair.slice(0, eq), pair.slice(eq + 1));
    }
    form = undefined;
    if (at.status >= 300 && at.status < 400) {
      const target = new URL(at.headers.get('location'), next);
      if (target.pathname.endsWith('/callback')) {
        const callback = await fetch(target, { ...noFollow, headers: { cookie: flowCookie } });
        // Without return_to the callback ends on its own page: report the callback URL.
        if (callback.status === 200 && (await callback.text()).includes(' is connected')) return target;
        if (callback.status !== 302) throw new Error(`callback answered ${callback.status}: ${await callback.text()}`);
        return new URL(callback.headers.get('location'));
      }
      next = target.toString();
    } else if (at.status === 200) {
      // The provider's own sign-in or consent page.
      const html = await at.text();
      const action = /<form[^>]*action="([^"]+)"/.exec(html)[1];
      const prompt = /name="prompt" value="(\w+)"/.exec(html)[1];
      form = new URLSearchParams(prompt === 'login' ? { prompt, login: 'conformance-user', password: 'any' } : { prompt });
      next = new URL(action, next).toString();
    } else {
      throw new Error(`provider answered ${at.status}: ${await at.text()}`);
    }
  }
  throw new Error('too many steps at the provider');
}
