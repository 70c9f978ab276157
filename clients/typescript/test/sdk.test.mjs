// The TypeScript SDK against a live Eventgate: EVENTGATE_URL, EVENTGATE_API_KEY (all scopes),
// EVENTGATE_TIGHT_KEY (a key whose tier allows 2 requests a second) and
// EVENTGATE_WEBHOOK_SAMPLES (real deliveries captured by the Python test that runs this).
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";

import { EventgateClient, EventgateError, OPERATIONS, verifyWebhook, WebhookVerificationError } from "eventgate-client";

const baseUrl = process.env.EVENTGATE_URL;
const apiKey = process.env.EVENTGATE_API_KEY;
const client = new EventgateClient({ baseUrl, apiKey });
const camel = (name) => name.replace(/_([a-z])/g, (_, c) => c.toUpperCase());
const event = (type, n = 0) => ({ source: "shop", event_type: type, payload: { n } });

test("every operation of the live API has a method", async () => {
  const document = await (await fetch(`${baseUrl}/openapi.json`)).json();
  const specs = Object.values(document.paths).flatMap((methods) => Object.values(methods));
  const missing = specs
    .map((spec) => camel(spec.operationId))
    .filter((name) => typeof EventgateClient.prototype[name] !== "function");
  assert.deepEqual(missing, [], "regenerate: uv run python clients/generate.py");
  assert.equal(OPERATIONS.length, specs.length);
  for (const spec of specs) {
    const paged = (spec.parameters ?? []).some((p) => p.name === "cursor");
    if (!paged || spec.operationId === "stream_events") continue;
    const base = camel(spec.operationId.replace(/^list_/, ""));
    const iter = "iter" + base[0].toUpperCase() + base.slice(1);
    assert.equal(typeof EventgateClient.prototype[iter], "function", iter);
  }
});

test("calls, pages and errors", async () => {
  const batch = await client.ingestBatch({ events: Array.from({ length: 120 }, (_, n) => event("ts.page", n)) });
  assert.equal(batch.count, 120);
  const first = batch.events[0].event_id;
  assert.deepEqual((await client.getEvent(first)).payload, { n: 0 });
  const seen = [];
  for await (const item of client.iterInbox({ event_type: "ts.page", limit: 50 })) seen.push(item.payload.n);
  assert.deepEqual(seen, Array.from({ length: 120 }, (_, n) => n));
  assert.equal((await client.ackEvent(first)).status, "acknowledged");
  await assert.rejects(client.getEvent("01a244e5-dbc4-7532-9c7c-9b154e8c579d"), (error) => {
    assert.ok(error instanceof EventgateError);
    assert.equal(error.status, 404);
    assert.equal(error.code, "not_found");
    assert.ok(error.requestId);
    return true;
  });
  await assert.rejects(client.ingestEvent({ source: "s", event_type: "t", payload: [] }), (error) => {
    assert.equal(error.status, 400);
    return true;
  });
});

test("a rate-limited POST waits Retry-After and is stored once", async () => {
  const tight = new EventgateClient({ baseUrl, apiKey: process.env.EVENTGATE_TIGHT_KEY, maxRetries: 5 });
  const started = Date.now();
  const ids = [];
  for (let n = 0; n < 6; n++) ids.push((await tight.ingestEvent(event("ts.tight", n))).event_id);
  assert.ok(Date.now() - started >= 1000, "some were refused and retried after Retry-After");
  const stored = [];
  for await (const item of client.iterInbox({ event_type: "ts.tight" })) stored.push(item.id);
  assert.deepEqual(stored, ids);
});

test("the stream follows new events and resumes after a given id", async () => {
  const controller = new AbortController();
  const received = [];
  const following = (async () => {
    for await (const item of client.streamEvents({ event_type: "ts.live", signal: controller.signal })) {
      received.push(item);
      if (received.length === 2) return;
    }
  })();
  await new Promise((done) => setTimeout(done, 1000));
  const ids = [];
  for (const type of ["ts.live", "ts.other", "ts.live", "ts.live"]) ids.push((await client.ingestEvent(event(type))).event_id);
  await following;
  assert.deepEqual(received.map((r) => r.event.id), [ids[0], ids[2]]);
  const resumed = client.streamEvents({ event_type: "ts.live", lastEventId: received[0].id });
  const next = await resumed.next();
  assert.equal(next.value.event.id, ids[2]);
  await resumed.return();
  controller.abort();
});

test("verifyWebhook accepts real deliveries of both schemes and nothing else", async () => {
  const samples = JSON.parse(readFileSync(process.env.EVENTGATE_WEBHOOK_SAMPLES, "utf8"));
  for (const { raw, headers, secret } of samples) {
    assert.deepEqual((await verifyWebhook(raw, headers, secret)).payload, { a: 1 });
    const wrong = [
      [raw + " ", headers, secret],
      [raw, { ...headers, "webhook-timestamp": "1000" }, secret],
      [raw, {}, secret],
      [raw, headers, samples.find((s) => s.secret !== secret).secret],
    ];
    for (const args of wrong) await assert.rejects(verifyWebhook(...args), WebhookVerificationError);
  }
});
