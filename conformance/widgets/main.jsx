// A host page as an application would write it: <WorkOsWidgets> pointed at Pipes, and a widget
// whose token the page's backend (server.js) mints with the official Node SDK.
//   ?widget=pipes|admin  &api=127.0.0.1:PORT  &user=ID  &org=ID  &manage=1  &shared=1
import React from 'react';
import { createRoot } from 'react-dom/client';
import { Pipes, PipesAdmin, WorkOsWidgets } from '@workos-inc/widgets';
import '@radix-ui/themes/styles.css';
import '@workos-inc/widgets/styles.css';

const params = new URLSearchParams(window.location.search);
const [hostname, port] = (params.get('api') ?? '').split(':');

async function authToken() {
  const query = new URLSearchParams();
  for (const key of ['user', 'org', 'manage']) {
    if (params.get(key)) query.set(key, params.get(key));
  }
  const response = await fetch(`/token?${query}`);
  if (!response.ok) throw new Error(`token: ${response.status}`);
  return (await response.json()).token;
}

const shared = params.get('shared') === '1';
const widget =
  params.get('widget') === 'none' ? (
    <p>An application page without widgets.</p>
  ) : params.get('widget') === 'admin' ? (
    <PipesAdmin authToken={authToken} enableSharedConnections={shared} />
  ) : (
    <Pipes authToken={authToken} enableSharedConnections={shared} />
  );

createRoot(document.getElementById('root')).render(
  <React.StrictMode>
    <WorkOsWidgets apiHostname={hostname} port={Number(port)} https={false}>
      <main style={{ maxWidth: 720, margin: '32px auto', padding: '0 16px' }}>{widget}</main>
    </WorkOsWidgets>
  </React.StrictMode>,
);
