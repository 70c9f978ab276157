/**
 * Verify a webhook Eventgate delivered (Standard Webhooks): `v1,` HMAC-SHA256 signatures with
 * the endpoint's whsec_ secret, `v1a,` Ed25519 signatures with its whpk_ public key.
 * WebCrypto only: no dependency.
 */

export class WebhookVerificationError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "WebhookVerificationError";
  }
}

const DEFAULT_TOLERANCE_SECONDS = 300;

function fromBase64(text: string): Uint8Array<ArrayBuffer> {
  return Uint8Array.from(atob(text), (c) => c.charCodeAt(0));
}

function header(headers: Record<string, string> | Headers, name: string): string | undefined {
  if (headers instanceof Headers) return headers.get(name) ?? undefined;
  const found = Object.keys(headers).find((k) => k.toLowerCase() === name);
  return found === undefined ? undefined : headers[found];
}

async function matches(signature: string, signed: Uint8Array<ArrayBuffer>, secret: string): Promise<boolean> {
  const comma = signature.indexOf(",");
  const version = signature.slice(0, comma);
  let given: Uint8Array<ArrayBuffer>;
  try {
    given = fromBase64(signature.slice(comma + 1));
  } catch {
    return false;
  }
  const subtle = globalThis.crypto.subtle;
  if (version === "v1" && secret.startsWith("whsec_")) {
    const key = await subtle.importKey(
      "raw", fromBase64(secret.slice(6)), { name: "HMAC", hash: "SHA-256" }, false, ["verify"],
    );
    return subtle.verify("HMAC", key, given, signed);
  }
  if (version === "v1a" && secret.startsWith("whpk_")) {
    const key = await subtle.importKey("raw", fromBase64(secret.slice(5)), { name: "Ed25519" }, false, [
      "verify",
    ]);
    return subtle.verify({ name: "Ed25519" }, key, given, signed);
  }
  return false;
}

/**
 * The delivered event (decoded JSON) when a signature in `webhook-signature` matches
 * `secret` and `webhook-timestamp` is within the tolerance; throws WebhookVerificationError
 * if not. Pass the raw body as received: re-encoded JSON would not match.
 */
export async function verifyWebhook(
  payload: string | Uint8Array,
  headers: Record<string, string> | Headers,
  secret: string,
  toleranceSeconds = DEFAULT_TOLERANCE_SECONDS,
): Promise<unknown> {
  const body = typeof payload === "string" ? new TextEncoder().encode(payload) : new Uint8Array(payload);
  const id = header(headers, "webhook-id");
  const timestamp = Number(header(headers, "webhook-timestamp"));
  const signatures = header(headers, "webhook-signature")?.split(" ") ?? [];
  if (!id || !Number.isInteger(timestamp) || signatures.length === 0) {
    throw new WebhookVerificationError("missing or malformed webhook headers");
  }
  if (Math.abs(Date.now() / 1000 - timestamp) > toleranceSeconds) {
    throw new WebhookVerificationError("the timestamp is outside the tolerance");
  }
  const prefix = new TextEncoder().encode(`${id}.${timestamp}.`);
  const signed = new Uint8Array(prefix.length + body.length);
  signed.set(prefix);
  signed.set(body, prefix.length);
  for (const signature of signatures) {
    if (await matches(signature, signed, secret)) return JSON.parse(new TextDecoder().decode(body));
  }
  throw new WebhookVerificationError("no signature matches the secret");
}
