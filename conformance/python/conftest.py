import pytest
from workos import WorkOSClient

import pipes_harness


@pytest.fixture(scope="session")
def server():
    s = pipes_harness.start()
    yield s
    s.stop()


@pytest.fixture(scope="session")
def client(server):
    return WorkOSClient(api_key=server.api_key, client_id=server.client_id, base_url=server.base_url, max_retries=0)


@pytest.fixture(autouse=True)
def clean(client):
    """Each test starts from an environment without integrations."""
    for di in list(client.pipes.list_data_integrations(limit=100).auto_paging_iter()):
        if di.ownership == "organization":
            client.pipes.delete_data_integration_organization(di.slug)
        else:
            client.pipes.delete_data_integration(di.slug)
    yield
