// The dashboard's calls to the router: JSON with the API key as a bearer token, and server-sent
// events read from a fetch body (EventSource cannot send an Authorization header).

const KEY = 'nexus.apiKey';

export const credentials = {
  get key() { return sessionStorage.getItem(KEY) ?? ''; },
  set(key) { sessionStorage.setItem(KEY, key); },
  clear() { sessionStorage.removeItem(KEY); },
};

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

function headers(withBody) {
  const result = {};
  if (credentials.key) result.authorization = `Bearer ${credentials.key}`;
  if (withBody) result['content-type'] = 'application/json';
  return result;
}

/** The message of an error body: KServe's {"error": "..."} or OpenAI's {"error": {"message"}}. */
function messageOf(json, fallback) {
  if (json && typeof json.error === 'string') return json.error;
  if (json && json.error && typeof json.error.message === 'string') return json.error.message;
  return fallback;
}

/** Calls `path`; resolves with its JSON, rejects with an ApiError carrying the status. */
export async function api(path, { method = 'GET', body } = {}) {
  const response = await fetch(path, { method, headers: headers(body !== undefined), body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await response.text();
  let json;
  try {
    json = text ? JSON.parse(text) : {};
  } catch {
    json = { error: text };
  }
  if (!response.ok) throw new ApiError(response.status, messageOf(json, response.statusText));
  return json;
}

/** POSTs `body` and calls `onEvent` with each `data:` event's JSON as it arrives. */
export async function streamEvents(path, body, onEvent) {
  const response = await fetch(path, { method: 'POST', headers: headers(true), body: JSON.stringify(body) });
  if (!response.ok) {
    const text = await response.text();
    let json;
    try { json = JSON.parse(text); } catch { json = { error: text }; }
    throw new ApiError(response.status, messageOf(json, response.statusText));
  }
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffered = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffered += value;
    let end;
    while ((end = buffered.indexOf('\n\n')) >= 0) {
      const event = buffered.slice(0, end);
      buffered = buffered.slice(end + 2);
      for (const line of event.split('\n')) {
        if (!line.startsWith('data: ')) continue;
        const data = line.slice(6);
        if (data === '[DONE]') return;
        onEvent(JSON.parse(data));
      }
    }
  }
}
