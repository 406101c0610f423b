"""API-key and client-credentials connections, organization settings, shared connections with
membership, and multiple connections, through the official Python SDK (workos==10.8.0)."""

import base64
import json
import time
import urllib.request
import uuid

import pytest
from workos._errors import (
    AuthorizationError,
    BadRequestError,
    ConflictError,
    NotFoundError,
    UnprocessableEntityError,
)
from workos.pipes.models import ApiKeyInstallation, CustomProviderDefinition, DataIntegrationCredentialsInput

import pipes_harness


@pytest.fixture(scope="module")
def provider():
    p = pipes_harness.start_provider()
    yield p
    p.stop()


@pytest.fixture(autouse=True)
def settings(server):
    """Each test starts with multiple connections off and membership in trust mode."""
    server.cli("env", "settings", "sandbox", "--multiple-connections", "off", "--membership", "trust",
               "--connection-limit", "25")
    yield


def uid(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:12]}"


def membership(server, org: str, user: str, status: str) -> dict:
    """Pipes' membership API (not part of the WorkOS SDKs)."""
    req = urllib.request.Request(
        f"{server.base_url}/pipes/organizations/{org}/memberships/{user}",
        data=json.dumps({"status": status}).encode(),
        method="PUT",
        headers={"authorization": f"Bearer {server.api_key}", "content-type": "application/json"},
    )
    with urllib.request.urlopen(req) as r:
        return json.loads(r.read())


def api_key_root(client, slug="keyed", ownership=None, **kw):
    return client.pipes.create_data_integration(
        provider=slug,
        ownership=ownership,
        enabled=True,
        auth_methods=["api_key"],
        custom_provider=CustomProviderDefinition(name="Keyed"),
        **kw,
    )


def test_api_key_connections_create_rotate_and_vend(client, server):
    user = uid("user")
    root = api_key_root(client, api_key=ApiKeyInstallation(secret="sk-first-12345", user_id=user))
    assert root.redirect_uri == "" and root.credentials is None
    assert root.installation.connection_role == "compatibility"
    assert root.installation.api_key_last_4 == "2345"

    first = client.pipes.get_user_connected_account(user, "keyed")
    assert first.auth_method == "api_key" and first.api_key_last_4 == "2345" and first.scopes == []

    rotated = client.pipes.update_data_integration_api_key("keyed", user_id=user, secret="sk-second-67890")
    assert rotated.id == first.id and rotated.api_key_last_4 == "7890"

    vended = client.pipes.create_data_integration_credential("keyed", user_id=user)
    assert vended.active is True
    assert vended.credential.auth_method == "api_key" and vended.credential.value == "sk-second-67890"

    with pytest.raises(UnprocessableEntityError) as e:
        client.pipes.get_access_token("keyed", user_id=user)
    assert e.value.code == "auth_method_mismatch"

    # Never in plaintext at rest, never in the logs.
    db = server.env["PIPES_DATABASE_URL"].removeprefix("sqlite://")
    for path in (db, db + "-wal"):
        try:
            data = open(path, "rb").read()
        except FileNotFoundError:
            continue
        assert b"sk-second-67890" not in data and b"sk-first-12345" not in data
    assert "sk-second-67890" not in server.logs()

    # A second tenant through the PUT route, scoped to an organization.
    scoped = client.pipes.update_data_integration_api_key("keyed", user_id=user, organization_id=uid("org"), secret="k2")
    assert scoped.id != first.id and scoped.connection_role == "compatibility"

    # Made, rotated and deleted: each announced with the user as owner.
    client.pipes.delete_user_connected_account(user, "keyed")
    kinds = ["pipes.connected_account." + k for k in ("connected", "reauthorization_needed", "disconnected")]
    events = [e for e in client.events.list_events(events=kinds).auto_paging_iter() if e.data.id == first.id]
    assert [e.event.rsplit(".", 1)[1] for e in events] == ["connected", "connected", "disconnected"]
    assert all(e.data.user_id == user and e.data.organization_id is None for e in events)
    assert events[-1].data.state == "disconnected"


def test_api_key_input_errors(client):
    user = uid("user")
    api_key_root(client)
    with pytest.raises(UnprocessableEntityError):
        client.pipes.update_data_integration_api_key("keyed", user_id=user, secret="")
    with pytest.raises(NotFoundError):
        client.pipes.update_data_integration_api_key("absent", user_id=user, secret="k")
    with pytest.raises(NotFoundError) as e:
        client.pipes.update_data_integration_api_key(
            "keyed", user_id=user, secret="k", connected_account_id="data_installation_01ABCDEFGHJKMNPQRSTVWXYZ00"
        )
    assert e.value.code == "connected_account_not_found"
    with pytest.raises(BadRequestError):
        client.pipes.update_data_integration_api_key("keyed", user_id=user, secret="k", connection_intent="reauthorize")
    client.pipes.create_data_integration(
        provider="oauthy",
        enabled=True,
        credentials=DataIntegrationCredentialsInput(type="custom", client_id="c", client_secret="s"),
        custom_provider=CustomProviderDefinition(
            name="OAuthy", authorization_url="https://auth.example.com/a", token_url="https://auth.example.com/t"
        ),
    )
    with pytest.raises(UnprocessableEntityError) as e:
        client.pipes.update_data_integration_api_key("oauthy", user_id=user, secret="k")
    assert e.value.code == "auth_method_mismatch"


def test_multiple_connections_add_select_and_warn(client, server):
    user = uid("user")
    api_key_root(client)
    first = client.pipes.create_data_integration_api_key(
        "keyed", user_id=user, secret="work-key-1", connection_intent="add", account_display_name="Work"
    )
    assert first.connection_role == "compatibility"
    with pytest.raises(NotFoundError) as e:
        client.pipes.create_data_integration_api_key("keyed", user_id=user, secret="k-2", connection_intent="add")
    assert e.value.code == "multiple_connections_unavailable"

    server.cli("env", "settings", "sandbox", "--multiple-connections", "on", "--connection-limit", "2")
    second = client.pipes.create_data_integration_api_key(
        "keyed", user_id=user, secret="home-key-2", connection_intent="add", account_display_name="Work",
        account_identifier="acct-2", idempotency_key="add-home-" + user,
    )
    assert second.connection_role == "standard" and second.account_identifier == "acct-2"
    assert [w.code for w in second.warnings] == ["duplicate_account_display_name"]
    # A retried add with the same key answers the same connection instead of adding another.
    again = client.pipes.create_data_integration_api_key(
        "keyed", user_id=user, secret="home-key-2", connection_intent="add", account_display_name="Work",
        account_identifier="acct-2", idempotency_key="add-home-" + user,
    )
    assert again.id == second.id
    with pytest.raises(ConflictError) as e:
        client.pipes.create_data_integration_api_key("keyed", user_id=user, secret="k-3", connection_intent="add")
    assert e.value.code == "connected_account_limit_reached"

    # Selector-free calls see the compatibility connection only; the plural contract must choose.
    assert client.pipes.create_data_integration_credential("keyed", user_id=user).credential.value == "work-key-1"
    with pytest.raises(ConflictError) as e:
        client.pipes.create_data_integration_credential("keyed", user_id=user, supports_multiple_connections=True)
    assert e.value.code == "account_selection_required"
    exact = client.pipes.create_data_integration_credential("keyed", user_id=user, connected_account_id=second.id)
    assert exact.credential.value == "home-key-2"

    listed = client.pipes.list_user_data_providers(user, supports_multiple_connections=True)
    keyed = next(p for p in listed.data if p.slug == "keyed")
    assert keyed.connected_account.id == first.id
    assert {a.id for a in keyed.connected_accounts} == {first.id, second.id}
    plain = next(p for p in client.pipes.list_user_data_providers(user).data if p.slug == "keyed")
    assert [a.id for a in plain.connected_accounts] == [first.id]

    # Rotate the standard one exactly; relabel through the connected-account PUT.
    rotated = client.pipes.update_data_integration_api_key(
        "keyed", user_id=user, secret="home-key-3", connection_intent="reauthorize", connected_account_id=second.id
    )
    assert rotated.id == second.id and rotated.api_key_last_4 == "ey-3"
    relabelled = client.pipes.update_user_connected_account(
        user, "keyed", connected_account_id=second.id, account_display_name="Home"
    )
    assert relabelled.account_display_name == "Home" and not relabelled.warnings

    # Deleting the compatibility connection leaves its slot empty; the standard one is not promoted.
    client.pipes.delete_user_connected_account(user, "keyed", connected_account_id=first.id)
    assert client.pipes.create_data_integration_credential("keyed", user_id=user).error == "not_installed"
    assert client.pipes.get_user_connected_account(user, "keyed", supports_multiple_connections=True).id == second.id


def test_client_credentials_are_proven_minted_and_cached(client, provider):
    user = uid("user")
    client.pipes.create_data_integration(
        provider="machine",
        enabled=True,
        scopes=["read"],
        auth_methods=["client_credentials"],
        custom_provider=CustomProviderDefinition(name="Machine", token_url=provider.token_url),
    )
    with pytest.raises(UnprocessableEntityError) as e:
        client.pipes.update_data_integration_client_credentials(
            "machine", user_id=user, client_id="tenant-app", client_secret="wrong"
        )
    assert e.value.code == "invalid_client_credentials"
    before = provider.stats()["client_credentials"]
    account = client.pipes.update_data_integration_client_credentials(
        "machine", user_id=user, client_id="tenant-app", client_secret="tenant-secret-abcd"
    )
    assert account.auth_method == "client_credentials"
    assert account.client_id == "tenant-app" and account.client_secret_last_4 == "abcd"
    assert provider.stats()["client_credentials"] == before + 1
    assert provider.stats()["last_client_id"] == "tenant-app"

    vended = client.pipes.create_data_integration_credential("machine", user_id=user)
    assert vended.active is True and vended.credential.auth_method == "client_credentials"
    assert vended.credential.value and vended.credential.expires_at is not None
    again = client.pipes.create_data_integration_credential("machine", user_id=user)
    assert again.credential.value == vended.credential.value
    assert provider.stats()["client_credentials"] == before + 1, "the proven token is cached until near expiry"

    added = client.pipes.create_data_integration_client_credential(
        "machine", user_id=uid("user"), client_id="other-app", client_secret="other-secret", connection_intent="add"
    )
    assert added.connection_role == "compatibility" and added.client_id == "other-app"
    with pytest.raises(UnprocessableEntityError) as e:
        client.pipes.get_access_token("machine", user_id=user)
    assert e.value.code == "auth_method_mismatch"


def test_builtin_client_credentials_need_the_tenants_config(client):
    root = client.pipes.create_data_integration(
        provider="salesforce", enabled=True, auth_methods=["client_credentials"]
    )
    assert root.auth_methods == ["client_credentials"] and root.credentials is None
    with pytest.raises(UnprocessableEntityError) as e:
        client.pipes.update_data_integration_client_credentials(
            "salesforce", user_id=uid("user"), client_id="consumer-key", client_secret="consumer-secret"
        )
    assert e.value.errors[0]["field"] == "config.my_domain"
    with pytest.raises(UnprocessableEntityError):
        client.pipes.create_data_integration(provider="github", enabled=True, auth_methods=["api_key"])


def test_shared_connections_follow_membership(client, server):
    org, admin, other = uid("org"), uid("user"), uid("user")
    api_key_root(client, ownership="organization")
    shared = client.pipes.update_data_integration_api_key(
        "keyed", user_id=admin, organization_id=org, connection_owner="organization", secret="org-key-0001"
    )
    assert shared.user_id is None and shared.organization_id == org
    assert shared.established_by_user_id == admin
    got = client.pipes.get_organization_connected_account(org, "keyed")
    assert got.id == shared.id
    providers = client.pipes.list_organization_data_providers(org)
    assert providers.data[0].connection_owner == "organization"
    assert providers.data[0].connected_account.id == shared.id

    vended = client.pipes.create_data_integration_credential(
        "keyed", user_id=other, organization_id=org, connection_owner="organization"
    )
    assert vended.credential.value == "org-key-0001"
    with pytest.raises(UnprocessableEntityError) as e:
        client.pipes.create_data_integration_credential("keyed", user_id=other, connection_owner="organization")
    assert e.value.code == "organization_id_required"

    # The application says the establishing member left: the connection is cleared.
    assert membership(server, org, admin, "inactive")["status"] == "inactive"
    cleared = client.pipes.get_organization_connected_account(org, "keyed")
    assert cleared.state == "needs_reauthorization"
    assert cleared.state_reason == "establishing_member_membership_ended"
    assert cleared.established_by_user_id is None and cleared.api_key_last_4 is None
    # Both state changes were announced with the organization as owner and no user.
    events = list(
        client.events.list_events(
            events=["pipes.connected_account.connected", "pipes.connected_account.reauthorization_needed"],
            organization_id=org,
        ).auto_paging_iter()
    )
    assert [e.event for e in events] == [
        "pipes.connected_account.connected",
        "pipes.connected_account.reauthorization_needed",
    ]
    assert all(e.data.organization_id == org and e.data.user_id is None for e in events)
    assert events[1].data.id == shared.id
    with pytest.raises(AuthorizationError) as e:
        client.pipes.create_data_integration_credential(
            "keyed", user_id=admin, organization_id=org, connection_owner="organization"
        )
    assert e.value.code == "user_not_member_of_organization"
    assert (
        client.pipes.create_data_integration_credential(
            "keyed", user_id=other, organization_id=org, connection_owner="organization"
        ).error
        == "needs_reauthorization"
    )

    # Registry mode: only declared members act.
    server.cli("env", "settings", "sandbox", "--membership", "registry")
    with pytest.raises(AuthorizationError):
        client.pipes.update_data_integration_api_key(
            "keyed", user_id=other, organization_id=org, connection_owner="organization", secret="org-key-0002"
        )
    with pytest.raises(NotFoundError):
        client.pipes.update_data_integration_api_key(
            "keyed", user_id=other, organization_id=uid("org"), connection_owner="organization", secret="x"
        )
    membership(server, org, other, "active")
    restored = client.pipes.update_data_integration_api_key(
        "keyed", user_id=other, organization_id=org, connection_owner="organization", secret="org-key-0002"
    )
    assert restored.id == shared.id and restored.state == "connected" and restored.established_by_user_id == other

    client.pipes.delete_organization_connected_account(org, "keyed")
    with pytest.raises(NotFoundError):
        client.pipes.get_organization_connected_account(org, "keyed")


def test_organization_imports_and_updates(client, provider):
    org, member = uid("org"), uid("user")
    client.pipes.create_data_integration(
        provider="acme",
        ownership="organization",
        enabled=True,
        credentials=DataIntegrationCredentialsInput(type="custom", client_id="c", client_secret="s"),
        custom_provider=CustomProviderDefinition(
            name="Acme", authorization_url=provider.authorization_url, token_url=provider.token_url
        ),
    )
    imported = client.pipes.create_organization_connected_account(
        org, "acme", user_id=member, access_token="at-org", scopes=["read"]
    )
    assert imported.user_id is None and imported.established_by_user_id == member
    updated = client.pipes.update_organization_connected_account(
        org, "acme", user_id=member, state="needs_reauthorization"
    )
    assert updated.state == "needs_reauthorization"
    token = client.pipes.get_access_token("acme", user_id=member, organization_id=org, connection_owner="organization")
    assert token.active is False and token.error == "needs_reauthorization"


def test_organization_settings_override_scopes_enabled_and_apps(client, server, provider):
    org, user = uid("org"), uid("user")
    server.cli("redirect-uris", "add", "--env", "sandbox", "http://localhost/done")
    client.pipes.create_data_integration(
        provider="acme",
        enabled=True,
        scopes=["read", "write"],
        credentials=DataIntegrationCredentialsInput(type="custom", client_id="root-app", client_secret="root-secret"),
        custom_provider=CustomProviderDefinition(
            name="Acme", authorization_url=provider.authorization_url, token_url=provider.token_url
        ),
    )
    client.pipes.create_data_integration(
        provider="orgapp",
        enabled=True,
        credentials=DataIntegrationCredentialsInput(type="organization"),
        custom_provider=CustomProviderDefinition(
            name="Org App", authorization_url=provider.authorization_url, token_url=provider.token_url
        ),
    )
    listed = client.pipes_provider.list_organization_data_integration_configurations(org)
    by_slug = {c.slug: c for c in listed.data}
    assert by_slug["acme"].scopes == ["read", "write"] and by_slug["acme"].credentials is None
    org_creds = by_slug["orgapp"].credentials
    assert org_creds.has_credentials is False and "/data-integrations/orgapp/dik_" in org_creds.redirect_uri

    narrowed = client.pipes_provider.update_organization_data_integration_configuration(org, "acme", scopes=["read"])
    assert narrowed.scopes == ["read"]
    with pytest.raises(UnprocessableEntityError):
        client.pipes_provider.update_organization_data_integration_configuration(org, "acme", scopes=["admin"])
    with pytest.raises(BadRequestError):
        client.pipes_provider.update_organization_data_integration_configuration(org, "acme")
    with pytest.raises(BadRequestError):
        client.pipes_provider.update_organization_data_integration_configuration(
            org, "acme", client_id="x", client_secret="y"
        )
    with pytest.raises(NotFoundError):
        client.pipes_provider.update_organization_data_integration_configuration(org, "absent", enabled=True)

    # The organization's scopes are what the user is asked for, and what vending compares to.
    out = client.pipes.authorize_data_integration("acme", user_id=user, organization_id=org, return_to="http://localhost/done")
    back = pipes_harness.browse(out.url)
    assert "error" not in back
    token = client.pipes.get_access_token("acme", user_id=user, organization_id=org)
    # The mock grants only "dummy": what is missing is the organization's "read", not the root's "write".
    assert token.active is True and token.access_token.missing_scopes == ["read"]
    unscoped = client.pipes.authorize_data_integration("acme", user_id=user, return_to="http://localhost/done")
    pipes_harness.browse(unscoped.url)
    assert client.pipes.get_access_token("acme", user_id=user).access_token.missing_scopes == ["read", "write"]

    # Disabled for the organization: not listed, cannot connect.
    client.pipes_provider.update_organization_data_integration_configuration(org, "acme", enabled=False)
    assert "acme" not in [p.slug for p in client.pipes.list_user_data_providers(user, organization_id=org).data]
    assert "acme" in [p.slug for p in client.pipes.list_user_data_providers(user).data]
    with pytest.raises(UnprocessableEntityError):
        client.pipes.authorize_data_integration("acme", user_id=user, organization_id=org)

    # An organization-credential integration needs the organization's own app, then uses it.
    with pytest.raises(UnprocessableEntityError) as e:
        client.pipes.authorize_data_integration("orgapp", user_id=user, organization_id=org)
    assert e.value.code == "invalid_data_integration_state"
    configured = client.pipes_provider.update_organization_data_integration_configuration(
        org, "orgapp", client_id="org-own-app", client_secret="org-own-secret-9z9z"
    )
    assert configured.credentials.has_credentials is True
    assert configured.credentials.client_id == "org-own-app"
    assert configured.credentials.client_secret_last_four == "9z9z"
    assert configured.credentials.redirect_uri == org_creds.redirect_uri
    out = client.pipes.authorize_data_integration("orgapp", user_id=user, organization_id=org, return_to="http://localhost/done")
    back = pipes_harness.browse(out.url)
    assert "error" not in back, back
    assert provider.stats()["last_client_id"] == "org-own-app"
    assert client.pipes.get_access_token("orgapp", user_id=user, organization_id=org).active is True

    # Refreshes use the organization's app too: reconnect with 2-second tokens, let another app
    # talk to the provider, and wait until the token is inside its refresh margin.
    provider.set_ttl(2)
    try:
        out = client.pipes.authorize_data_integration(
            "orgapp", user_id=user, organization_id=org, return_to="http://localhost/done"
        )
        assert "error" not in pipes_harness.browse(out.url)
        other = client.pipes.authorize_data_integration("acme", user_id=uid("user"), return_to="http://localhost/done")
        assert "error" not in pipes_harness.browse(other.url)
        assert provider.stats()["last_client_id"] == "root-app"
        before = provider.stats()["refreshes"]
        time.sleep(1.5)
        assert client.pipes.get_access_token("orgapp", user_id=user, organization_id=org).active is True
        assert provider.stats()["refreshes"] == before + 1
        assert provider.stats()["last_client_id"] == "org-own-app"
    finally:
        provider.set_ttl(3600)


def jwt_parts(token: str) -> tuple[dict, dict]:
    def part(s: str) -> dict:
        return json.loads(base64.urlsafe_b64decode(s + "=" * (-len(s) % 4)))

    header, claims, signature = token.split(".")
    assert len(base64.urlsafe_b64decode(signature + "=" * (-len(signature) % 4))) == 32
    return part(header), part(claims)


def test_widget_and_client_api_tokens(client, server):
    org, user = uid("org"), uid("user")
    token = client.widgets.create_token(organization_id=org, user_id=user, scopes=["widgets:pipes:manage"])
    header, claims = jwt_parts(token.token)
    assert header["alg"] == "HS256" and header["typ"] == "JWT" and header["kid"]
    assert claims["aud"] == "widgets" and claims["sub"] == user and claims["org_id"] == org
    assert claims["scopes"] == ["widgets:pipes:manage"] and claims["exp"] - claims["iat"] == 3600

    admin = client.widgets.create_token(organization_id=org, scopes=["widgets:pipes:manage"])
    assert "sub" not in jwt_parts(admin.token)[1]

    api = client.client_api.create_token(organization_id=org, user_id=user)
    _, claims = jwt_parts(api.token)
    assert claims["aud"] == "client" and claims["scopes"] == [] and claims["sub"] == user

    with pytest.raises(BadRequestError) as e:
        client.widgets.create_token(user_id=user, scopes=["widgets:pipes:manage"])
    assert e.value.code == "organization_id_required"
    with pytest.raises(UnprocessableEntityError):
        client.widgets.create_token(organization_id=org, scopes=["widgets:everything:manage"])

    # A member the application said has left gets no token; in registry mode neither does a
    # user of an organization nobody declared.
    membership(server, org, user, "inactive")
    with pytest.raises(UnprocessableEntityError):
        client.client_api.create_token(organization_id=org, user_id=user)
    server.cli("env", "settings", "sandbox", "--membership", "registry")
    with pytest.raises(NotFoundError):
        client.widgets.create_token(organization_id=uid("org"), user_id=user)
    membership(server, org, user, "active")
    assert client.widgets.create_token(organization_id=org, user_id=user).token
