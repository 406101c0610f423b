"""A whole connection through the official Python SDK against oidc-provider (certified OpenID
Provider): real sign-in and consent pages, PKCE, rotating refresh tokens whose reuse revokes the
grant. Session binding and finish included."""

import base64
import hashlib
import secrets
import time
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import parse_qs, urlparse

import pytest
from workos.pipes.models import (
    CustomProviderDefinition,
    DataIntegrationCredentialsInput,
    UpdateCustomProviderDefinition,
)

import pipes_harness


@pytest.fixture
def oidc(client, server):
    server.cli("redirect-uris", "add", "--env", "sandbox", "http://localhost/done")
    created = client.pipes.create_data_integration(
        provider="oidc",
        enabled=True,
        scopes=["openid", "offline_access"],
        credentials=DataIntegrationCredentialsInput(type="custom", client_id="pipes-oidc", client_secret="pipes-oidc-secret"),
        custom_provider=CustomProviderDefinition(
            name="OIDC",
            authorization_url="http://127.0.0.1:9/auth",
            token_url="http://127.0.0.1:9/token",
            additional_authorization_parameters={"prompt": "consent"},
        ),
    )
    provider = pipes_harness.start_provider("oidc-provider", created.redirect_uri)
    client.pipes.update_data_integration(
        "oidc",
        custom_provider=UpdateCustomProviderDefinition(
            authorization_url=provider.authorization_url, token_url=provider.token_url
        ),
    )
    yield provider
    provider.stop()


def test_session_bound_connection_then_one_refresh_for_fifty_callers(client, oidc):
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    oidc.set_ttl(3)
    out = client.pipes.authorize_data_integration(
        "oidc", user_id="user_oidc_py", return_to="http://localhost:4300/done", code_challenge=challenge
    )
    back = {k: v[0] for k, v in parse_qs(urlparse(pipes_harness.browse(out.url)).query).items()}
    assert back["state"] == out.state
    finished = client.pipes.finish_connection(connect_code=back["connect_code"], code_verifier=verifier)
    assert finished.connected_account.state == "connected"
    assert finished.connected_account.scopes == ["openid", "offline_access"]
    assert oidc.stats()["code_exchanges"] == 1

    time.sleep(3.2)
    oidc.set_ttl(3600)
    before = oidc.stats()
    with ThreadPoolExecutor(max_workers=50) as pool:
        answers = list(pool.map(lambda _: client.pipes.get_access_token("oidc", user_id="user_oidc_py"), range(50)))
    after = oidc.stats()
    assert all(a.active is True for a in answers)
    assert len({a.access_token.access_token for a in answers}) == 1, "50 identical answers"
    assert after["refreshes"] - before["refreshes"] == 1, "exactly one refresh at the provider"
    assert after["reused_refresh_tokens"] == 0, "a consumed refresh token is never presented again"
    assert after["invalid_refresh_tokens"] == 0
