/** The API's error envelope as an exception. */
export class EventgateError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details: unknown = null,
    readonly requestId: string | null = null,
    readonly headers: Record<string, string> = {},
  ) {
    super(`${status} ${code}: ${message}`);
    this.name = "EventgateError";
  }
}

/** The exception an error answer stands for (any body, envelope or not). */
export async function errorFrom(response: Response): Promise<EventgateError> {
  const text = await response.text();
  const headers = Object.fromEntries(response.headers.entries());
  try {
    const { error } = JSON.parse(text) as {
      error: { code: string; message: string; details?: unknown; request_id?: string };
    };
    return new EventgateError(
      response.status, error.code, error.message, error.details ?? null, error.request_id ?? null, headers,
    );
  } catch {
    return new EventgateError(response.status, "http_error", text.slice(0, 500), null, null, headers);
  }
}
