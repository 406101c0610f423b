// Starts a real third-party OAuth server for the conformance suites and prints one JSON line:
//   {"authorization_url", "token_url", "control_url"}
// Usage: node providers.js oauth2-mock-server
//        node providers.js oidc-provider REDIRECT_URI
//
// oauth2-mock-server issues a new refresh token with every token response; the hook below turns
// that into rotation with reuse detection (a refresh token works once; presenting a used one is
// counted and answered with invalid_grant). It also serves the client-credentials grant for any
// client except one whose secret is "wrong" (answered invalid_client), and counts the grants and
// the last client id it saw.
//
// oidc-provider is a certified OpenID Provider: real login and consent pages (devInteractions),
// PKCE, refresh-token rotation, and a consumed refresh token presented again revokes the grant.
//
// Both let tests shorten the access-token lifetime, and a control server reports what the
// provider served: GET /stats, GET /ttl?seconds=N.
import { createServer } from 'node:http';
import { OAuth2Server } from 'oauth2-mock-server';
import Provider from 'oidc-provider';

const stats = {
  code_exchanges: 0, refreshes: 0, reused_refresh_tokens: 0, invalid_refresh_tokens: 0,
  client_credentials: 0, rejected_clients: 0, last_client_id: null,
};
let ttl = 3600;

function control(endpoints, stop) {
  const server = createServer((req, res) => {
    const url = new URL(req.url, 'http://x');
    if (url.pathname === '/ttl') ttl = Number(url.searchParams.get('seconds'));
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ ...stats, ttl }));
  });
  server.listen(0, '127.0.0.1', () => {
    console.log(JSON.stringify({ ...endpoints, control_url: `http://127.0.0.1:${server.address().port}` }));
  });
  const shutdown = async () => {
    server.close();
    await stop();
    process.exit(0);
  };
  process.on('SIGTERM', shutdown);
  process.on('SIGINT', shutdown);
}

async function freePort() {
  return new Promise((resolvePort) => {
    const probe = createServer().listen(0, '127.0.0.1', () => {
      const { port } = probe.address();
      probe.close(() => resolvePort(port));
    });
  });
}

async function startOauth2MockServer() {
  const live = new Set();
  const used = new Set();
  const server = new OAuth2Server();
  await server.issuer.keys.generate('RS256');
  server.service.on('beforeResponse', (response, req) => {
    const body = req.body ?? {};
    const basic = (req.headers.authorization ?? '').replace(/^Basic /, '');
    const clientId = body.client_id ?? (basic ? decodeURIComponent(Buffer.from(basic, 'base64').toString().split(':')[0]) : null);
    const clientSecret = body.client_secret
      ?? (basic ? decodeURIComponent(Buffer.from(basic, 'base64').toString().split(':')[1] ?? '') : null);
    stats.last_client_id = clientId;
    // Any client is accepted except one whose secret is literally "wrong".
    if (clientSecret === 'wrong') {
      stats.rejected_clients += 1;
      response.statusCode = 401;
      response.body = { error: 'invalid_client', error_description: 'client authentication failed' };
      return;
    }
    if (body.grant_type === 'client_credentials') stats.client_credentials += 1;
    if (body.grant_type === 'refresh_token') {
      const presented = body.refresh_token;
      if (used.has(presented) || !live.has(presented)) {
        if (used.has(presented)) stats.reused_refresh_tokens += 1;
        else stats.invalid_refresh_tokens += 1;
        response.statusCode = 400;
        response.body = { error: 'invalid_grant', error_description: 'refresh token reused or unknown' };
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
  control({ authorization_url: `${issuer}/authorize`, token_url: `${issuer}/token` }, () => server.stop());
}

async function startOidcProvider(redirectUri) {
  const port = await freePort();
  const issuer = `http://127.0.0.1:${port}`;
  const oidc = new Provider(issuer, {
    clients: [{
      client_id: 'pipes-oidc',
      client_secret: 'pipes-oidc-secret',
      redirect_uris: [redirectUri],
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_post',
    }],
    rotateRefreshToken: true,
    ttl: {
      AccessToken: () => ttl, AuthorizationCode: 60, Grant: 86400, Interaction: 600,
      Session: 86400, IdToken: 3600, RefreshToken: 86400,
    },
    cookies: { keys: ['pipes-conformance-cookie-key'] },
    findAccount: (_ctx, id) => ({ accountId: id, claims: () => ({ sub: id }) }),
  });
  oidc.on('grant.success', (ctx) => {
    if (ctx.oidc.params.grant_type === 'refresh_token') stats.refreshes += 1;
    if (ctx.oidc.params.grant_type === 'authorization_code') stats.code_exchanges += 1;
  });
  oidc.on('grant.error', (ctx, err) => {
    if (ctx.oidc.params?.grant_type !== 'refresh_token') return;
    if (/already used/.test(err.error_description ?? '')) stats.reused_refresh_tokens += 1;
    else stats.invalid_refresh_tokens += 1;
  });
  const app = createServer(oidc.callback());
  await new Promise((ready) => app.listen(port, '127.0.0.1', ready));
  control({ authorization_url: `${issuer}/auth`, token_url: `${issuer}/token` }, () => app.close());
}

const kind = process.argv[2] ?? 'oauth2-mock-server';
if (kind === 'oauth2-mock-server') await startOauth2MockServer();
else if (kind === 'oidc-provider') await startOidcProvider(process.argv[3]);
else {
  console.error(`unknown provider ${kind}`);
  process.exit(2);
}
