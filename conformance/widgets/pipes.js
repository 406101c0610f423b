// Starts `pipes dev` for the browser suite, as a developer would run it: its mock OAuth provider,
// its `mock` integration and its API key; a fresh data folder (and, with PIPES_DATABASE_URL, that
// database) each run. Resolves {host, port, baseUrl, apiKey, cli(...args), api(method, path, body),
// stop()}.
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';
import { createServer } from 'node:net';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const pipesBin = process.env.PIPES_BIN ?? join(root, 'target', 'debug', 'pipes');

function freePort() {
  return new Promise((done) => {
    const probe = createServer().listen(0, '127.0.0.1', () => {
      const { port } = probe.address();
      probe.close(() => done(port));
    });
  });
}

export async function startPipesDev() {
  const dir = mkdtempSync(join(tmpdir(), 'pipes-widgets-'));
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('PIPES_')));
  Object.assign(env, {
    PIPES_DATABASE_URL: process.env.PIPES_WIDGETS_DATABASE_URL ?? `sqlite://${join(dir, 'pipes.db')}`,
    PIPES_LISTEN: '127.0.0.1:0',
    PIPES_LOG: 'warn',
  });
  const mockPort = await freePort();
  const child = spawn(pipesBin, ['dev', '--data-dir', dir, '--mock-provider-port', String(mockPort)], {
    env,
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const printed = {};
  await new Promise((ready, fail) => {
    const timer = setTimeout(() => fail(new Error('pipes dev did not start')), 60000);
    child.on('exit', (code) => fail(new Error(`pipes dev exited with ${code}`)));
    createInterface({ input: child.stdout }).on('line', (line) => {
      const m = line.match(/^\s+(API key|API)\s+(\S+)/);
      if (m) printed[m[1]] = m[2];
      if (printed.API && printed['API key']) {
        clearTimeout(timer);
        ready();
      }
    });
  });
  const url = new URL(printed.API);
  const apiKey = printed['API key'];
  // The vault key `pipes dev` made, so that CLI commands open the same database.
  const cli = (...args) => execFileSync(pipesBin, args, { env: { ...env, PIPES_LISTEN: '127.0.0.1:0' }, encoding: 'utf8' });
  const api = async (method, path, body) => {
    const response = await fetch(`${url.origin}${path}`, {
      method,
      headers: { authorization: `Bearer ${apiKey}`, 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await response.text();
    return { status: response.status, body: text ? JSON.parse(text) : null };
  };
  return {
    host: url.hostname,
    port: Number(url.port),
    baseUrl: url.origin,
    mockUrl: `http://127.0.0.1:${mockPort}`,
    apiKey,
    cli,
    api,
    stop: () =>
      new Promise((done) => {
        child.removeAllListeners('exit');
        if (child.exitCode !== null) return done();
        child.on('exit', () => done());
        child.kill('SIGTERM');
      }),
  };
}
