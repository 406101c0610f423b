"""The data-integrations management API through the official Python SDK (workos==10.8.0)."""

from datetime import datetime

import pytest
from workos import WorkOSClient
from workos._errors import (
    AuthenticationError,
    BadRequestError,
    ConflictError,
    NotFoundError,
    UnprocessableEntityError,
)
from workos.pipes.models import (
    CustomProviderDefinition,
    DataIntegration,
    DataIntegrationCredentialsInput,
    UpdateCustomProviderDefinition,
)


def github_credentials(secret="s3cr3t-value-1234"):
    return DataIntegrationCredentialsInput(type="custom", client_id="Iv1.abc123", client_secret=secret)


def test_create_get_update_delete_builtin(client: WorkOSClient, server):
    created = client.pipes.create_data_integration(
        provider="github", credentials=github_credentials(), description="Production GitHub app", scopes=["repo", "read:org"]
    )
    assert isinstance(created, DataIntegration)
    assert created.object == "data_integration"
    assert created.id.startswith("data_integration_")
    assert created.slug == "github"
    assert created.integration_type == "github"
    assert created.ownership == "user"
    assert created.description == "Production GitHub app"
    assert created.enabled is False
    assert created.state == "valid"
    assert created.scopes == ["repo", "read:org"]
    assert created.auth_methods == ["oauth"]
    assert created.redirect_uri.startswith(f"{server.base_url}/data-integrations/github/dik_")
    assert created.redirect_uri.endswith("/callback")
    assert created.credentials is not None
    assert created.credentials.type == "custom"
    assert created.credentials.client_id == "Iv1.abc123"
    assert created.credentials.redacted_client_secret == "1234"
    assert created.installation is None
    assert created.config == {}
    assert created.custom_provider is None
    assert isinstance(created.created_at, datetime) and isinstance(created.updated_at, datetime)

    got = client.pipes.get_data_integration("github")
    assert got.id == created.id and got.to_dict() == created.to_dict()

    updated = client.pipes.update_data_integration("github", enabled=True, scopes=None, description=None)
    assert updated.enabled is True
    assert updated.scopes is None
    assert updated.description is None
    assert updated.credentials.redacted_client_secret == "1234"
    assert updated.redirect_uri == created.redirect_uri

    rotated = client.pipes.update_data_integration("github", credentials=github_credentials("new-secret-9876"))
    assert rotated.credentials.redacted_client_secret == "9876"

    client.pipes.delete_data_integration("github")
    with pytest.raises(NotFoundError) as err:
        client.pipes.get_data_integration("github")
    assert err.value.request_id and err.value.request_id.startswith("req_")


def test_organization_owned_root(client: WorkOSClient):
    root = client.pipes.create_data_integration(
        provider="slack", ownership="organization", credentials=DataIntegrationCredentialsInput(type="organization"), enabled=True
    )
    assert root.ownership == "organization"
    assert root.credentials.type == "organization"
    assert root.credentials.client_id is None and root.credentials.redacted_client_secret is None
    got = client.pipes.list_data_integration_organization("slack")
    assert got.id == root.id
    with pytest.raises(NotFoundError):
        client.pipes.get_data_integration("slack")
    updated = client.pipes.update_data_integration_organization("slack", description="Shared workspace")
    assert updated.description == "Shared workspace"
    client.pipes.delete_data_integration_organization("slack")
    with pytest.raises(NotFoundError):
        client.pipes.list_data_integration_organization("slack")


def test_custom_provider_defaults_and_partial_update(client: WorkOSClient):
    created = client.pipes.create_data_integration(
        provider="acme-crm",
        credentials=DataIntegrationCredentialsInput(type="custom", client_id="acme", client_secret="acme-secret"),
        custom_provider=CustomProviderDefinition(
            name="Acme CRM",
            authorization_url="https://auth.acme.test/oauth/authorize",
            token_url="https://auth.acme.test/oauth/token",
        ),
    )
    cp = created.custom_provider
    assert cp is not None
    assert cp.name == "Acme CRM"
    assert cp.authorization_url == "https://auth.acme.test/oauth/authorize"
    assert cp.token_url == "https://auth.acme.test/oauth/token"
    assert cp.refresh_token_url is None
    assert cp.pkce_enabled is True
    assert cp.request_scope_separator == " "
    assert cp.scopes_required is False
    assert cp.client_secret_required is True
    assert cp.additional_authorization_parameters == {}
    assert cp.token_body_content_type == "application/x-www-form-urlencoded"
    assert cp.authenticate_via == "request_body"

    updated = client.pipes.update_data_integration(
        "acme-crm",
        custom_provider=UpdateCustomProviderDefinition(
            token_body_content_type="application/json",
            authenticate_via="basic_auth_header",
            additional_authorization_parameters={"audience": "api"},
        ),
    )
    cp = updated.custom_provider
    assert cp.token_body_content_type == "application/json"
    assert cp.authenticate_via == "basic_auth_header"
    assert cp.additional_authorization_parameters == {"audience": "api"}
    assert cp.name == "Acme CRM", "fields not sent keep their values"

    # Python always serialises refresh_token_url, as null when unset: null clears it.
    with_refresh = client.pipes.update_data_integration(
        "acme-crm", custom_provider=UpdateCustomProviderDefinition(refresh_token_url="https://auth.acme.test/refresh")
    )
    assert with_refresh.custom_provider.refresh_token_url == "https://auth.acme.test/refresh"
    renamed = client.pipes.update_data_integration("acme-crm", custom_provider=UpdateCustomProviderDefinition(name="Acme"))
    assert renamed.custom_provider.refresh_token_url is None

    with pytest.raises(UnprocessableEntityError) as err:
        client.pipes.create_data_integration(
            provider="github",
            credentials=github_credentials(),
            custom_provider=CustomProviderDefinition(name="x", authorization_url="https://x.test/a", token_url="https://x.test/t"),
        )
    assert err.value.code == "invalid_request_parameters"


def test_pagination_follows_after_until_null(client: WorkOSClient):
    slugs = ["github", "gitlab", "slack", "notion", "linear", "asana", "zoom"]
    for slug in slugs:
        client.pipes.create_data_integration(provider=slug, credentials=DataIntegrationCredentialsInput(type="organization"))
    first = client.pipes.list_data_integrations(limit=3)
    assert len(first.data) == 3
    assert first.list_metadata.after == first.data[-1].id
    everything = [di.slug for di in client.pipes.list_data_integrations(limit=3).auto_paging_iter()]
    assert everything == list(reversed(slugs)), "newest first, each once"
    oldest_first = [di.slug for di in client.pipes.list_data_integrations(limit=2, order="asc").auto_paging_iter()]
    assert oldest_first == slugs
    only_org = client.pipes.list_data_integrations(ownership="organization")
    assert only_org.data == []


def test_error_classes(client: WorkOSClient, server):
    client.pipes.create_data_integration(provider="github", credentials=github_credentials())
    with pytest.raises(ConflictError):
        client.pipes.create_data_integration(provider="github", credentials=github_credentials())
    with pytest.raises(NotFoundError):
        client.pipes.create_data_integration(provider="no-such-provider", credentials=github_credentials())
    with pytest.raises(UnprocessableEntityError) as err:
        client.pipes.create_data_integration(provider="gitlab")
    assert err.value.code == "invalid_request_parameters"
    with pytest.raises(UnprocessableEntityError):
        client.pipes.list_data_integrations(limit=1000)
    with pytest.raises(NotFoundError):
        client.pipes.delete_data_integration("no-such-provider")
    with pytest.raises(BadRequestError):
        client.pipes.update_data_integration("github", scopes="repo")  # type: ignore[arg-type]
    stranger = WorkOSClient(api_key="sk_test_not_a_real_key", client_id=server.client_id, base_url=server.base_url, max_retries=0)
    with pytest.raises(AuthenticationError):
        stranger.pipes.list_data_integrations()


def test_no_secret_reaches_the_logs(client: WorkOSClient, server):
    canary = "log-canary-secret-5b7e1c"
    client.pipes.create_data_integration(provider="github", credentials=github_credentials(canary))
    client.pipes.update_data_integration("github", credentials=github_credentials(canary + "-2"))
    logs = server.logs()
    assert "pipes is serving" in logs and "/data-integrations" in logs
    assert canary not in logs
    assert server.api_key not in logs
