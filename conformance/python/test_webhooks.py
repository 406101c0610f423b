"""Events and webhooks through the official Python SDK (workos==10.8.0) against a real pipes
serve: endpoint management, the Events API, and deliveries verified with verify_event."""

import json
import re

import pytest
from workos._errors import ConflictError, NotFoundError, UnprocessableEntityError
from workos.pipes.models import DataIntegrationCredentialsInput

import pipes_harness

CONNECTED = "pipes.connected_account.connected"
DISCONNECTED = "pipes.connected_account.disconnected"
ALL_CONNECTED = "pipes.account_connection.connected"


@pytest.fixture
def github(client):
    client.pipes.create_data_integration(
        provider="github",
        credentials=DataIntegrationCredentialsInput(type="custom", client_id="cid", client_secret="csecret"),
    )
    return "github"


@pytest.fixture
def receiver():
    r = pipes_harness.Receiver()
    yield r
    r.close()


def verify(client, delivery, secret):
    assert re.fullmatch(r"t=\d{13}, v1=[0-9a-f]{64}", delivery["signature"]), delivery["signature"]
    event = client.webhooks.verify_event(event_body=delivery["raw"], event_signature=delivery["signature"], secret=secret)
    # The same bytes as text verify too.
    client.webhooks.verify_event(event_body=delivery["raw"].decode(), event_signature=delivery["signature"], secret=secret)
    return event


def test_endpoints_are_managed_with_the_sdk(client):
    created = client.webhooks.create_webhook_endpoint(endpoint_url="https://hooks.example.com/py", events=[CONNECTED])
    assert created.id.startswith("we_")
    assert re.fullmatch(r"whsec_[A-Za-z0-9]{32}", created.secret)
    assert created.status == "enabled"
    listed = list(client.webhooks.list_webhook_endpoints().auto_paging_iter())
    assert [(e.id, e.secret) for e in listed] == [(created.id, created.secret)]
    updated = client.webhooks.update_webhook_endpoint(created.id, status="disabled", events=[CONNECTED, DISCONNECTED])
    assert (updated.status, list(updated.events)) == ("disabled", [CONNECTED, DISCONNECTED])
    with pytest.raises(ConflictError):
        client.webhooks.create_webhook_endpoint(endpoint_url="https://hooks.example.com/py", events=[CONNECTED])
    with pytest.raises(UnprocessableEntityError):
        client.webhooks.create_webhook_endpoint(endpoint_url="ftp://hooks.example.com/py", events=[CONNECTED])
    with pytest.raises(UnprocessableEntityError):
        client.webhooks.create_webhook_endpoint(endpoint_url="https://hooks.example.com/b", events=["user.created"])
    client.webhooks.delete_webhook_endpoint(created.id)
    with pytest.raises(NotFoundError):
        client.webhooks.delete_webhook_endpoint(created.id)


def test_connect_and_disconnect_are_delivered_in_order_and_verify(client, github, receiver):
    endpoint = client.webhooks.create_webhook_endpoint(endpoint_url=receiver.url, events=[CONNECTED, DISCONNECTED])
    account = client.pipes.create_user_connected_account("user_py", github, access_token="gho_py", scopes=["repo"])
    client.pipes.delete_user_connected_account("user_py", github)

    deliveries = receiver.accepted(2)
    events = [verify(client, d, endpoint.secret) for d in deliveries]
    assert [e.event for e in events] == [CONNECTED, DISCONNECTED]
    bodies = [json.loads(d["raw"]) for d in deliveries]
    assert bodies[0]["data"]["id"] == account.id
    assert bodies[0]["data"]["user_id"] == "user_py"
    assert bodies[1]["data"]["state"] == "disconnected"
    assert b"gho_py" not in deliveries[0]["raw"]

    tampered = deliveries[0]["raw"].replace(b"user_py", b"user_evil")
    with pytest.raises(ValueError):
        client.webhooks.verify_event(event_body=tampered, event_signature=deliveries[0]["signature"], secret=endpoint.secret)
    with pytest.raises(ValueError):
        client.webhooks.verify_event(event_body=deliveries[0]["raw"], event_signature=deliveries[0]["signature"], secret="whsec_wrong")

    listed = list(client.events.list_events(events=[CONNECTED, DISCONNECTED], limit=100).auto_paging_iter())
    assert [e.id for e in listed][-2:] == [e.id for e in events]


def test_a_failing_receiver_gets_the_event_later(client, github, receiver):
    receiver.fail_next = 2
    endpoint = client.webhooks.create_webhook_endpoint(endpoint_url=receiver.url, events=[ALL_CONNECTED])
    client.pipes.create_user_connected_account("user_retry", github, access_token="gho_retry")
    [delivery] = receiver.accepted(1)
    assert len(receiver.received) == 3
    assert len({r["raw"] for r in receiver.received}) == 1, "the same bytes, re-signed"
    assert len({r["signature"] for r in receiver.received}) == 3
    assert verify(client, delivery, endpoint.secret).event == ALL_CONNECTED


def test_events_page_oldest_first_with_filters(client, github):
    users = [f"user_page_{i}" for i in range(12)]
    for i, user in enumerate(users):
        client.pipes.create_user_connected_account(user, github, access_token=f"gho_{i}", organization_id="org_py" if i % 2 else None)
    seen = [e.data.user_id for e in client.events.list_events(events=[CONNECTED], limit=5).auto_paging_iter()]
    assert seen[-12:] == users
    in_org = [e.data.user_id for e in client.events.list_events(events=[CONNECTED], organization_id="org_py").auto_paging_iter()]
    assert in_org == users[1::2]
    with pytest.raises(UnprocessableEntityError):
        client.events.list_events(events=["pipes.nonsense"])
