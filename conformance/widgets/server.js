// The host application of the browser suite: serves the built page (dist/) on its own loopback
// origin and mints widget tokens on its backend with the official Node SDK, as an app would.
//   GET /token?user=ID&org=ID&manage=1  →  {"token": "…"}
import { createServer } from 'node:http';
import { readFile } from 'node:fs/promises';
import { extname, join, normalize, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { WorkOS } from '@workos-inc/node';

const dist = resolve(dirname(fileURLToPath(import.meta.url)), 'dist');
const types = { '.html': 'text/html', '.js': 'text/javascript', '.css': 'text/css', '.svg': 'image/svg+xml' };

/** The app's logo, for the connect dialog's branding. */
const LOGO = `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 48 48"><rect width="48" height="48" rx="10" fill="#3b5bdb"/>
<path d="M14 33V15h4l12 12V15h4v18h-4L18 21v12z" fill="#fff"/></svg>`;

/** Starts the page's server for a Pipes at `pipes` ({host, port, apiKey}); resolves {origin, close}. */
export function startHostApp(pipes) {
  const workos = new WorkOS(pipes.apiKey, { apiHostname: pipes.host, port: pipes.port, https: false });
  const server = createServer(async (req, res) => {
    const url = new URL(req.url, 'http://page');
    try {
      if (url.pathname === '/token') {
        const options = { organizationId: url.searchParams.get('org') ?? undefined };
        if (url.searchParams.get('user')) options.userId = url.searchParams.get('user');
        if (url.searchParams.get('manage')) options.scopes = ['widgets:pipes:manage'];
        const { token } = await workos.widgets.createToken(options);
        res.setHeader('content-type', 'application/json');
        return res.end(JSON.stringify({ token }));
      }
      if (url.pathname === '/logo.svg') {
        res.setHeader('content-type', 'image/svg+xml');
        return res.end(LOGO);
      }
      const path = url.pathname === '/' ? '/index.html' : normalize(url.pathname);
      const body = await readFile(join(dist, path));
      res.setHeader('content-type', types[extname(path)] ?? 'application/octet-stream');
      res.end(body);
    } catch (e) {
      res.statusCode = e.code === 'ENOENT' ? 404 : 500;
      res.end(String(e.message ?? e));
    }
  });
  return new Promise((ready) => {
    server.listen(0, '127.0.0.1', () => {
      ready({ origin: `http://127.0.0.1:${server.address().port}`, close: () => server.close() });
    });
  });
}
