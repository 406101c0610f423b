// Starts a real `pipes serve` for the conformance suite: temp SQLite database, a vault key,
// an environment and an API key made with the CLI, exactly as an operator would.
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, createWriteStream, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const pipesBin = process.env.PIPES_BIN ?? join(root, 'target', 'debug', 'pipes');

export async function startPipes() {
  const dir = mkdtempSync(join(tmpdir(), 'pipes-conformance-node-'));
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('PIPES_')));
  Object.assign(env, {
    PIPES_DATABASE_URL: `sqlite://${join(dir, 'pipes.db')}`,
    PIPES_LISTEN: '127.0.0.1:0',
    PIPES_LOG_FORMAT: 'json',
    PIPES_LOG: 'debug',
  });
  const cli = (...args) => execFileSync(pipesBin, args, { env, encoding: 'utf8' });
  env.PIPES_VAULT_KEYS = cli('vault', 'generate-key', '--kid', 'conformance').trim();
  const created = cli('env', 'create', 'sandbox');
  const clientId = created.split('\n').find((l) => l.startsWith('client id')).split(/\s+/).pop();
  const apiKey = cli('keys', 'create', '--env', 'sandbox').trim().split('\n').pop();

  const logPath = join(dir, 'server.log');
  const log = createWriteStream(logPath);
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
  const [host, port] = address.split(':');
  return {
    host,
    port: Number(port),
    baseUrl: `http://${address}`,
    apiKey,
    clientId,
    logs: () => readFileSync(logPath, 'utf8'),
    stop: () => new Promise((done) => {
      child.removeAllListeners('exit');
      child.on('exit', () => done());
      child.kill('SIGTERM');
    }),
  };
}
