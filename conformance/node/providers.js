// Starts a real third-party OAuth server for the conformance suites and prints one JSON line:
//   {"authorization_url", "token_url", "control_url"}
// Usage: node providers.js oauth2-mock-server
//
// oauth2-mock-server issues a new refresh token with every token response. The hook below
// turns that into rotation with reuse detection (a refresh token works once; presenting a used
// one is counted and answered with invalid_grant, as strict providers do) and lets tests
// shorten the access-token lifetime. The control server reports what the provider served.
import { createServer } from 'node:http';
import { OAuth2Server } from 'oauth2-mock-server';

const kind = process.argv[2] ?? 'oauth2-mock-server';
if (kind !== 'oauth2-mock-server') {
  console.error(`unknown provider ${kind}`);
  process.exit(2);
}

const stats = { code_exchanges: 0, refreshes: 0, reused_refresh_tokens: 0, invalid_refresh_tokens: 0 };
let ttl = 3600;
const live = new Set();
const used = new Set();

const server = new OAuth2Server();
await server.issuer.keys.generate('RS256');
server.service.on('beforeResponse', (response, req) => {
  const body = req.body ?? {};
  if (body.grant_type === 'refresh_token') {
    const presented = body.refresh_token;
    if (used.has(presented)) {
      stats.reused_refresh_tokens += 1;
      response.statusCode = 400;
      response.body = { error: 'invalid_grant', error_description: 'refresh token reused' };
      return;
    }
    if (!live.has(presented)) {
      stats.invalid_refresh_tokens += 1;
      response.statusCode = 400;
      response.body = { error: 'invalid_grant', error_description: 'unknown refresh token' };
      return;
    }
    live.delete(presented);
    used.add(presented);
    stats.refreshes += 1;
  } else if (body.grant_type === 'authorization_code') {
    stats.code_exchanges += 1;
  }
  if (response.statusCode === 200) {
    response.body.expires_in = ttl;
    if (response.body.refresh_token) live.add(response.body.refresh_token);
  }
});
await server.start(0, '127.0.0.1');
const issuer = server.issuer.url.replace('localhost', '127.0.0.1');

const control = createServer((req, res) => {
  const url = new URL(req.url, 'http://x');
  if (url.pathname === '/ttl') ttl = Number(url.searchParams.get('seconds'));
  res.setHeader('content-type', 'application/json');
  res.end(JSON.stringify({ ...stats, ttl }));
});
control.listen(0, '127.0.0.1', () => {
  console.log(JSON.stringify({
    authorization_url: `${issuer}/authorize`,
    token_url: `${issuer}/token`,
    control_url: `http://127.0.0.1:${control.address().port}`,
  }));
});

const stop = async () => {
  control.close();
  await server.stop();
  process.exit(0);
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
