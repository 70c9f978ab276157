"""Sources are created and edited in the console: a refused form comes back with what was
typed (never the secret) and the error at its field; the secret is write-only, revealed on a
page of its own (audited) that a viewer cannot open."""

from __future__ import annotations

import re

from tests.app.console.helpers import make_user, post_form, sign_in, signed_in_as
from tests.helpers import auth, make_key

SOURCE_LINK = re.compile(r"/console/sources/([0-9a-f-]{36})\?notice=source_created")


async def test_a_source_is_created_refused_kept_edited_and_its_secret_revealed(
    client, database_url
):
    key = await make_key(database_url)
    csrf = await sign_in(client, key)
    form = {
        "name": "github",
        "scheme": "github",
        "rule": "event_type_header",
        "rule_value": "X-GitHub-Event",
        "event_type_prefix": "github.",
        "secret": "s3cr3t-typed",
    }
    refused = await post_form(client, "/console/sources", csrf, **{**form, "options": "{not json"})
    assert refused.status_code == 400
    assert 'id="error-options"' in refused.text
    assert 'value="X-GitHub-Event"' in refused.text  # kept
    assert "s3cr3t-typed" not in refused.text  # never shown again
    created = await post_form(client, "/console/sources", csrf, **form)
    assert created.status_code == 303, created.text
    source_id = SOURCE_LINK.search(created.headers["location"]).group(1)
    page = (await client.get(created.headers["location"])).text
    assert "/v1/triggers/" in page
    assert "s3cr3t-typed" not in page
    taken = await post_form(client, "/console/sources", csrf, **form)
    assert taken.status_code == 409
    assert 'id="error-name"' in taken.text
    edited = await post_form(
        client,
        f"/console/sources/{source_id}",
        csrf,
        **{**form, "secret": "", "rule": "event_type", "rule_value": "github.any"},
    )
    assert edited.status_code == 303, edited.text
    shown = (await client.get(f"/v1/sources/{source_id}", headers=auth(key))).json()
    assert shown["event_type"] == "github.any"
    assert shown["event_type_header"] is None
    secret = (await client.get(f"/console/sources/{source_id}/secret")).text
    assert "s3cr3t-typed" in secret  # an empty secret kept the one given at creation
    audit = (
        await client.get("/v1/audit-logs?action=source.secret.reveal", headers=auth(key))
    ).json()
    assert len(audit["entries"]) == 1


async def test_a_viewer_reads_sources_and_endpoints_but_no_secret(client, database_url):
    key = await make_key(database_url)
    made = await client.post(
        "/v1/sources",
        json={"name": "s", "verification": {"scheme": "github"}, "event_type": "t"},
        headers=auth(key),
    )
    source_id = made.json()["source"]["id"]
    endpoint = await client.post(
        "/v1/endpoints", json={"url": "https://a.example/h"}, headers=auth(key)
    )
    endpoint_id = endpoint.json()["endpoint"]["id"]
    await make_user(database_url, "val@example.com", role="viewer")
    await signed_in_as(client, "val@example.com")
    assert (await client.get(f"/console/sources/{source_id}")).status_code == 200
    assert (await client.get(f"/console/sources/{source_id}/secret")).status_code == 403
    assert (await client.get(f"/console/endpoints/{endpoint_id}")).status_code == 200
    assert (await client.get(f"/console/endpoints/{endpoint_id}/secret")).status_code == 403


async def test_an_event_type_editor_keeps_bad_json_with_the_error_at_the_schema(
    client, database_url
):
    key = await make_key(database_url)
    csrf = await sign_in(client, key)
    broken = '{"type": "object", "required": ["n"'
    refused = await post_form(
        client, "/console/event-types", csrf, name="invoice.paid", schema=broken
    )
    assert refused.status_code == 400
    assert 'id="error-schema"' in refused.text
    assert "not valid JSON" in refused.text
    assert 'value="invoice.paid"' in refused.text
    assert "[&#34;n&#34;" in refused.text or '["n"' in refused.text  # the typed schema is back
    assert "Sorry" not in refused.text
    made = await post_form(client, "/console/event-types", csrf, name="invoice.paid", schema="")
    assert made.status_code == 303
    again = await post_form(client, "/console/event-types", csrf, name="invoice.paid", schema="")
    assert again.status_code == 409
    assert 'id="error-name"' in again.text
    edit = await post_form(client, "/console/event-types/invoice.paid", csrf, schema='{"type": 5}')
    assert edit.status_code == 400
    assert 'id="error-schema"' in edit.text


async def test_an_endpoint_form_says_what_is_wrong_in_plain_words(client, database_url):
    key = await make_key(database_url)
    csrf = await sign_in(client, key)
    refused = await post_form(
        client, "/console/endpoints", csrf, kind="http", url="ftp://example.com/h", description="d"
    )
    assert refused.status_code == 400
    assert "url: enter a full URL that starts with https://" in refused.text
    assert "Expected" not in refused.text
    assert 'value="d"' in refused.text
