/**
 * Eventgate's API over fetch: every operation (generated), retries of 429/503 honouring
 * Retry-After with one Idempotency-Key per logical POST, errors as EventgateError, and the
 * live event stream with resumption.
 */
import { errorFrom, EventgateError } from "./errors.js";
import { type CallOptions, type EventView, Operations } from "./generated.js";

export interface ClientOptions {
  baseUrl: string;
  apiKey?: string;
  /** Tries after the first for a 429, a 503 or a failed connection (default 3). */
  maxRetries?: number;
  /** The longest wait between tries, in seconds (default 60). */
  maxRetryWait?: number;
  fetch?: typeof fetch;
}

export interface StreamFilters {
  source?: string;
  event_type?: string;
  channel?: string;
  /** Resume after this stream id (a StreamedEvent's id). */
  lastEventId?: string;
  signal?: AbortSignal;
}

/** One event of the stream; `id` resumes the stream (and pages the inbox) after it. */
export interface StreamedEvent {
  id: string;
  event: EventView;
}

const RETRIED = new Set([429, 503]);
const RESUMABLE_CLOSES = new Set(["shutdown", "slow_consumer", "database_unavailable"]);
const sleep = (seconds: number) => new Promise((done) => setTimeout(done, seconds * 1000));

/** How long to wait before the next try: Retry-After (seconds or a date), else backoff. */
export function retryAfter(response: Response | null, attempt: number, cap: number): number {
  const header = response?.headers.get("retry-after");
  let wait = 0.5 * 2 ** attempt;
  if (header) {
    const seconds = Number(header);
    wait = Number.isFinite(seconds) ? seconds : (Date.parse(header) - Date.now()) / 1000;
  }
  return Math.min(Math.max(Number.isFinite(wait) ? wait : 0, 0), cap);
}

export class EventgateClient extends Operations {
  private readonly baseUrl: string;
  private readonly headers: Record<string, string>;
  private readonly maxRetries: number;
  private readonly maxRetryWait: number;
  private readonly fetch: typeof fetch;

  constructor(options: ClientOptions) {
    super();
    this.baseUrl = options.baseUrl.replace(/\/+$/, "");
    this.headers = options.apiKey ? { "X-API-Key": options.apiKey } : {};
    this.maxRetries = options.maxRetries ?? 3;
    this.maxRetryWait = options.maxRetryWait ?? 60;
    this.fetch = options.fetch ?? globalThis.fetch.bind(globalThis);
  }

  private url(path: string, query: CallOptions["query"] = {}): string {
    const params = new URLSearchParams();
    for (const [name, value] of Object.entries(query)) {
      if (value !== undefined && value !== null) params.set(name, String(value));
    }
    const search = params.toString();
    return this.baseUrl + path + (search ? `?${search}` : "");
  }

  protected async call<T>(method: string, path: string, options: CallOptions): Promise<T> {
    const headers: Record<string, string> = { ...this.headers, ...options.headers };
    let body: string | Uint8Array<ArrayBuffer> | undefined =
      options.raw instanceof Uint8Array ? new Uint8Array(options.raw) : options.raw;
    if (body === undefined && options.body !== undefined) {
      body = JSON.stringify(options.body);
      headers["content-type"] = "application/json";
    }
    if (method === "POST" && !("Idempotency-Key" in headers)) {
      headers["Idempotency-Key"] = globalThis.crypto.randomUUID(); // the same for every retry
    }
    for (let attempt = 0; ; attempt++) {
      let response: Response | null = null;
      try {
        response = await this.fetch(this.url(path, options.query), { method, headers, body });
      } catch (error) {
        if (attempt >= this.maxRetries) throw error;
      }
      if (response && (!RETRIED.has(response.status) || attempt >= this.maxRetries)) {
        if (!response.ok) throw await errorFrom(response);
        const text = await response.text();
        return (text ? JSON.parse(text) : undefined) as T;
      }
      await response?.body?.cancel();
      await sleep(retryAfter(response, attempt, this.maxRetryWait));
    }
  }

  /**
   * Follow pending events live (GET /v1/events/stream), reconnecting after a lost connection
   * from the last event received: each event once, in commit order. Stop with `break` or
   * the abort signal.
   */
  async *streamEvents(filters: StreamFilters = {}): AsyncGenerator<StreamedEvent> {
    const { lastEventId, signal, ...query } = filters;
    let last = lastEventId;
    let refusals = 0; // connections refused in a row (429, or 503 while the database is away)
    while (!signal?.aborted) {
      const headers: Record<string, string> = { ...this.headers, accept: "text/event-stream" };
      if (last) headers["Last-Event-ID"] = last;
      try {
        const response = await this.fetch(this.url("/v1/events/stream", query), { headers, signal });
        if (RETRIED.has(response.status) && refusals < this.maxRetries) {
          await response.body?.cancel();
          await sleep(retryAfter(response, refusals++, this.maxRetryWait));
          continue;
        }
        if (!response.ok) throw await errorFrom(response);
        refusals = 0;
        for await (const message of sseMessages(response.body!)) {
          if (message.event === "close") {
            const reason = String(JSON.parse(message.data ?? "{}").reason ?? "closed");
            if (!RESUMABLE_CLOSES.has(reason)) {
              throw new EventgateError(200, "stream_closed", `the server ended the stream: ${reason}`);
            }
          } else if (message.data !== undefined && message.id !== undefined) {
            last = message.id;
            yield { id: message.id, event: JSON.parse(message.data) as EventView };
          }
        }
      } catch (error) {
        if (error instanceof EventgateError || signal?.aborted) throw error;
      }
      await sleep(1);
    }
  }
}

/** The messages of a Server-Sent Events body, each as its fields (comments dropped). */
async function* sseMessages(body: ReadableStream<Uint8Array>): AsyncGenerator<Record<string, string>> {
  const decoder = new TextDecoder();
  let buffer = "";
  let fields: Record<string, string> = {};
  for await (const chunk of body as unknown as AsyncIterable<Uint8Array>) {
    buffer += decoder.decode(chunk, { stream: true });
    let newline: number;
    while ((newline = buffer.indexOf("\n")) >= 0) {
      const line = buffer.slice(0, newline).replace(/\r$/, "");
      buffer = buffer.slice(newline + 1);
      if (line === "") {
        if (Object.keys(fields).length) yield fields;
        fields = {};
      } else if (!line.startsWith(":")) {
        const colon = line.indexOf(":");
        const name = colon < 0 ? line : line.slice(0, colon);
        const value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
        fields[name] = (fields[name] ?? "") + value;
      }
    }
  }
}
