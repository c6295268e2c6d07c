"""Self-test of the Slack fakes: a real WebClient and a real Bolt app over loopback HTTP."""

from __future__ import annotations

import json
import socketserver
import threading
import time
from collections.abc import Iterator
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import pytest
from slack_bolt import Ack, App, Respond
from slack_bolt.adapter.wsgi import SlackRequestHandler
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.webhook import WebhookClient

from sandbox.slack_requests import SlackRequester
from sandbox.slack_simulator import FakeSlack

SECRET = "test-signing-secret"
CHANNEL = "C0001"


class _ThreadingWSGIServer(socketserver.ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """No access log in test output."""


def _card(number: str) -> list[dict[str, Any]]:
    return [
        {"type": "section", "block_id": "s", "text": {"type": "mrkdwn", "text": f"Drop {number}?"}},
        {
            "type": "actions",
            "block_id": "b",
            "elements": [
                {
                    "type": "button",
                    "action_id": "drop",
                    "text": {"type": "plain_text", "text": "Drop"},
                    "style": "danger",
                    "value": number,
                }
            ],
        },
    ]


@pytest.fixture
def fake() -> Iterator[FakeSlack]:
    with FakeSlack() as slack:
        yield slack


@pytest.fixture
def client(fake: FakeSlack) -> WebClient:
    return WebClient(token=fake.bot_token, base_url=fake.api_url)


@pytest.fixture
def events_url(client: WebClient) -> Iterator[str]:
    app = App(client=client, signing_secret=SECRET)

    @app.command("/drop-caller")
    def drop_caller(ack: Ack, command: dict[str, Any], client: WebClient, respond: Respond) -> None:
        ack()
        number = command["text"].strip()
        try:
            client.chat_postMessage(
                channel=command["channel_id"], text=number, blocks=_card(number)
            )
        except SlackApiError:
            respond(response_type="in_channel", text=number, blocks=_card(number))
            return
        respond(text=f"Posted {number}.")

    @app.action("drop")
    def drop(ack: Ack, body: dict[str, Any], client: WebClient, respond: Respond) -> None:
        ack()
        container = body["container"]
        done = [{"type": "section", "text": {"type": "mrkdwn", "text": "Dropped."}}]
        client.chat_update(
            channel=container["channel_id"], ts=container["message_ts"], text="x", blocks=done
        )
        respond(text=f"Dropped by <@{body['user']['id']}>.", response_type="ephemeral")

    server = make_server(
        "127.0.0.1",
        0,
        SlackRequestHandler(app),
        server_class=_ThreadingWSGIServer,
        handler_class=_QuietHandler,
    )
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.daemon = True
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/slack/events"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def test_web_client_json_and_form_bodies(fake: FakeSlack, client: WebClient) -> None:
    assert client.auth_test()["user_id"] == "UBOT"
    posted = client.chat_postMessage(channel=CHANNEL, text="hi", blocks=_card("1"))
    ts = posted["ts"]
    assert isinstance(ts, str)
    # chat.* methods go as JSON; blocks in a form body are JSON text, parsed by the fake.
    client.api_call("chat.update", params={"channel": CHANNEL, "ts": ts, "blocks": "[]"})
    message = fake.message(CHANNEL, ts)
    assert (message.text, message.blocks, message.edits) == ("hi", [], 1)
    assert fake.calls_to("chat.postMessage")[0].args["blocks"] == _card("1")
    assert fake.calls_to("chat.postMessage")[0].token == "xoxb-test-token"

    with pytest.raises(SlackApiError) as missing:
        client.chat_update(channel=CHANNEL, ts="1.000000", text="x")
    assert missing.value.response["error"] == "message_not_found"

    with pytest.raises(SlackApiError) as bad_auth:
        WebClient(token="xoxb-wrong", base_url=fake.api_url).auth_test()
    assert bad_auth.value.response["error"] == "invalid_auth"


def test_knobs(fake: FakeSlack, client: WebClient) -> None:
    fake.fail_next("chat.postMessage", "ratelimited", status=429, headers={"Retry-After": "1"})
    with pytest.raises(SlackApiError) as limited:
        client.chat_postMessage(channel=CHANNEL, text="a")
    assert limited.value.response.status_code == 429
    assert limited.value.response.headers["Retry-After"] == "1"
    first, second = (client.chat_postMessage(channel=CHANNEL, text=t)["ts"] for t in "bc")
    assert float(first) < float(second)

    fake.not_in_channel.add("C0002")
    with pytest.raises(SlackApiError, match="not_in_channel"):
        client.chat_postMessage(channel="C0002", text="a")

    fake.usergroups["S1"] = ["U1", "U2"]
    assert client.usergroups_users_list(usergroup="S1")["users"] == ["U1", "U2"]
    with pytest.raises(SlackApiError, match="no_such_subteam"):
        client.usergroups_users_list(usergroup="S2")
    assert client.chat_postEphemeral(channel=CHANNEL, user="U1", text="psst")["message_ts"]
    assert fake.ephemerals[0].user == "U1"
    assert [c.error for c in fake.calls] == [
        "ratelimited",
        None,
        None,
        "not_in_channel",
        None,
        "no_such_subteam",
        None,
    ]

    url = fake.new_response_url(CHANNEL)
    fake.response_url_status = 404
    assert WebhookClient(url).send(text="x").status_code == 404
    fake.response_url_status = 200
    assert WebhookClient(url).send(text="x").status_code == 200
    assert [p.status for p in fake.response_posts] == [404, 200]


def test_bolt_command_and_click(fake: FakeSlack, events_url: str) -> None:
    slack = SlackRequester(events_url, SECRET)
    command_url = fake.new_response_url(CHANNEL)
    answer = slack.command("+15551234567", response_url=command_url)
    assert answer.status == 200, answer

    card = fake.wait_for(lambda: fake.messages(CHANNEL))[0]
    assert card.blocks == _card("+15551234567")
    fake.wait_for(lambda: fake.response_posts)
    assert fake.response_posts[0].body == {"text": "Posted +15551234567."}

    click_url = fake.new_response_url(CHANNEL, message_ts=card.ts)
    clicked = slack.click(
        action_id="drop",
        value="+15551234567",
        message_ts=card.ts,
        response_url=click_url,
        message=card.to_payload(),
    )
    assert clicked.status == 200, clicked
    updated = fake.wait_for(lambda: [m for m in fake.messages(CHANNEL) if m.edits])[0]
    assert updated.ts == card.ts
    assert "actions" not in json.dumps(updated.blocks)
    fake.wait_for(lambda: len(fake.response_posts) == 2)
    assert fake.response_posts[1].body["text"] == "Dropped by <@USUP1>."


def test_bolt_fallback_and_signatures(fake: FakeSlack, events_url: str) -> None:
    slack = SlackRequester(events_url, SECRET)
    fake.not_in_channel.add("C0009")
    url = fake.new_response_url("C0009")
    assert slack.command("+15550000000", channel_id="C0009", response_url=url).status == 200
    fallback = fake.wait_for(lambda: fake.messages("C0009"))[0]
    assert (fallback.source, fallback.blocks) == ("response_url", _card("+15550000000"))

    body = b"command=%2Fdrop-caller&text=1"
    bad = slack.post(body, content_type="application/x-www-form-urlencoded", signature="v0=00")
    assert bad.status == 401
    stale = slack.post(
        body, content_type="application/x-www-form-urlencoded", timestamp=int(time.time()) - 600
    )
    assert stale.status == 401
    assert slack.command("1", response_url=url, timestamp=int(time.time()) - 600).status == 401
