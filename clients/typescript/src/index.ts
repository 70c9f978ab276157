export { EventgateClient, type ClientOptions, type StreamedEvent, type StreamFilters } from "./client.js";
export { EventgateError } from "./errors.js";
export { verifyWebhook, WebhookVerificationError } from "./webhooks.js";
export * from "./generated.js";
