from pathlib import Path

import pytest
from workos import WorkOSClient

import canary
import pipes_harness


@pytest.fixture(scope="session")
def server():
    # Short webhook retries, so the suite can watch them happen.
    s = pipes_harness.start(
        settings={
            "PIPES_WEBHOOK_RETRY_BASE_MS": "200",
            "PIPES_WEBHOOK_RETRY_MAX_SECONDS": "1",
            "PIPES_WORKER_POLL_MS": "100",
        }
    )
    canary.remember(s.api_key)
    yield s
    s.stop()
    canary.check(Path(s.env["PIPES_DATABASE_URL"].removeprefix("sqlite://")), s.log_path)


@pytest.fixture(scope="session")
def client(server):
    return WorkOSClient(
        api_key=server.api_key,
        client_id=server.client_id,
        base_url=server.base_url,
        max_retries=0,
        http_client=canary.http_client(),
    )


@pytest.fixture(autouse=True)
def clean(client):
    """Each test starts from an environment without integrations."""
    for di in list(client.pipes.list_data_integrations(limit=100).auto_paging_iter()):
        if di.ownership == "organization":
            client.pipes.delete_data_integration_organization(di.slug)
        else:
            client.pipes.delete_data_integration(di.slug)
    for endpoint in list(client.webhooks.list_webhook_endpoints(limit=100).auto_paging_iter()):
        client.webhooks.delete_webhook_endpoint(endpoint.id)
    yield
