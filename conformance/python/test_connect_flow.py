"""A whole connection through the official Python SDK (workos==10.8.0) against a real pipes serve,
with oauth2-mock-server (rotating refresh tokens with reuse detection) as the provider."""

import base64
import hashlib
import secrets
import time
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import parse_qs, urlparse

import pytest
from workos._errors import BadRequestError
from workos.pipes.models import CustomProviderDefinition, DataIntegrationCredentialsInput

import pipes_harness

RETURN_TO = "http://localhost:4100/done"


@pytest.fixture(scope="module")
def provider():
    p = pipes_harness.start_provider()
    yield p
    p.stop()


@pytest.fixture
def acme(client, server, provider):
    server.cli("redirect-uris", "add", "--env", "sandbox", "http://localhost/done")
    client.pipes.create_data_integration(
        provider="acme",
        enabled=True,
        scopes=["openid"],
        credentials=DataIntegrationCredentialsInput(type="custom", client_id="pipes-py", client_secret="pipes-py-secret"),
        custom_provider=CustomProviderDefinition(
            name="Acme", authorization_url=provider.authorization_url, token_url=provider.token_url
        ),
    )
    return "acme"


def pkce_pair():
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


def query(url: str) -> dict:
    return {k: v[0] for k, v in parse_qs(urlparse(url).query).items()}


def test_connect_without_session_binding(client, acme):
    out = client.pipes.authorize_data_integration(acme, user_id="user_py", return_to=RETURN_TO)
    assert out.url.endswith("/authorize-redirect")
    assert out.state and out.completion is None
    back = pipes_harness.browse(out.url)
    assert back.startswith(RETURN_TO)
    assert query(back) == {"state": out.state}
    token = client.pipes.get_access_token(acme, user_id="user_py")
    assert token.active is True
    assert token.access_token.access_token
    account = client.pipes.get_user_connected_account("user_py", acme)
    assert account.state == "connected"
    assert account.established_by_user_id == "user_py"


def test_session_binding_saves_only_on_finish(client, acme, server):
    verifier, challenge = pkce_pair()
    out = client.pipes.authorize_data_integration(
        acme, user_id="user_bound", return_to="http://localhost:4200/done", code_challenge=challenge, code_challenge_method="S256"
    )
    assert out.completion == "finish_required"
    back = query(pipes_harness.browse(out.url))
    assert back["state"] == out.state
    assert client.pipes.get_access_token(acme, user_id="user_bound").active is False
    with pytest.raises(BadRequestError) as err:
        client.pipes.finish_connection(connect_code=back["connect_code"], code_verifier=secrets.token_urlsafe(48))
    assert err.value.code == "invalid_connect_code"
    with pytest.raises(BadRequestError):
        client.pipes.finish_connection(connect_code=back["connect_code"], code_verifier=verifier)

    out = client.pipes.authorize_data_integration(
        acme, user_id="user_bound", return_to="http://localhost:4200/done", code_challenge=challenge
    )
    back = query(pipes_harness.browse(out.url))
    finished = client.pipes.finish_connection(connect_code=back["connect_code"], code_verifier=verifier, state=back["state"])
    assert back["connect_code"] not in server.logs() and verifier not in server.logs()
    assert finished.connected_account.user_id == "user_bound"
    assert finished.connected_account.state == "connected"
    assert client.pipes.get_access_token(acme, user_id="user_bound").active is True


def test_expiry_refreshes_once_for_fifty_concurrent_callers(client, acme, provider, server):
    provider.set_ttl(2)
    out = client.pipes.authorize_data_integration(acme, user_id="user_busy", return_to=RETURN_TO)
    pipes_harness.browse(out.url)
    # Leave the two-second token alone until it has expired; the refresh then gets a long one.
    time.sleep(2.2)
    provider.set_ttl(3600)
    before = provider.stats()
    with ThreadPoolExecutor(max_workers=50) as pool:
        answers = list(pool.map(lambda _: client.pipes.get_access_token(acme, user_id="user_busy"), range(50)))
    after = provider.stats()
    assert all(a.active is True for a in answers)
    tokens = {a.access_token.access_token for a in answers}
    assert len(tokens) == 1, "50 identical answers"
    assert after["refreshes"] - before["refreshes"] == 1, "exactly one refresh at the provider"
    logs = server.logs()
    assert "token refreshed" in logs, "the refresh is logged"
    for secret in tokens:
        assert secret not in logs, "no access token in the logs"
    assert after["reused_refresh_tokens"] == 0
    assert after["invalid_refresh_tokens"] == 0


def test_user_data_providers_lists_the_connection(client, acme):
    out = client.pipes.authorize_data_integration(acme, user_id="user_list", return_to=RETURN_TO)
    pipes_harness.browse(out.url)
    providers = client.pipes.list_user_data_providers("user_list")
    acme_entry = next(p for p in providers.data if p.slug == "acme")
    assert acme_entry.connection_owner == "user"
    assert acme_entry.connected_account is not None
    assert acme_entry.connected_account.state == "connected"
    assert len(acme_entry.connected_accounts) == 1
