// The console speaks only the public GraphQL API, like any other frontend: queries and
// mutations over HTTP, subscriptions over the websocket (graphql-transport-ws).

// The session lives in an HttpOnly cookie no script can read; the server sets it at
// `login` beside a CSRF value in a readable cookie, which every request repeats in the
// X-CSRF-Token header (a page of another site can make the browser send cookies, but
// cannot read that value).
const CSRF = 'crm_csrf';

function csrf() {
  const pair = document.cookie.split(';').map((p) => p.trim()).find((p) => p.startsWith(`${CSRF}=`));
  return pair ? pair.slice(CSRF.length + 1) : '';
}

/** Whether this browser holds a session (the server still decides whether it is valid). */
export const session = {
  get signedIn() {
    return csrf() !== '';
  },
  /** Forgets the session in this browser (the server ends it at `logout`). */
  clear() {
    document.cookie = `${CSRF}=; Path=/; Max-Age=0; SameSite=Strict`;
  },
};

/** A GraphQL error: its message and the server's `extensions.code`. */
export class ApiError extends Error {
  constructor(errors) {
    super(errors.map((e) => e.message).join('; '));
    this.code = errors[0]?.extensions?.code ?? 'INTERNAL';
  }
}

function expired() {
  session.clear();
  window.dispatchEvent(new Event('crm:signed-out'));
}

/** Runs one operation; resolves to its data or rejects with an ApiError. */
export async function gql(query, variables = {}) {
  const headers = { 'Content-Type': 'application/json' };
  if (session.signedIn) headers['X-CSRF-Token'] = csrf();
  let response;
  try {
    response = await fetch('/graphql', {
      method: 'POST',
      headers,
      credentials: 'same-origin',
      body: JSON.stringify({ query, variables }),
    });
  } catch (err) {
    throw new ApiError([{ message: String(err.message || err), extensions: { code: 'NETWORK' } }]);
  }
  let body;
  try {
    body = await response.json();
  } catch {
    throw new ApiError([{ message: `HTTP ${response.status}`, extensions: { code: 'INTERNAL' } }]);
  }
  if (body.errors && body.errors.length) {
    const error = new ApiError(body.errors);
    if (error.code === 'UNAUTHENTICATED' && session.signedIn) expired();
    throw error;
  }
  return body.data;
}

/**
 * Subscribes to one operation. `onData` gets each result's data; `onEnd` gets null when
 * the server completes the stream, or an error. Returns a function that unsubscribes.
 */
export function subscribe(query, variables, onData, onEnd) {
  const url = new URL('/graphql/ws', window.location.href);
  url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
  const socket = new WebSocket(url, 'graphql-transport-ws');
  let ended = false;
  const end = (error) => {
    if (ended) return;
    ended = true;
    onEnd(error);
  };
  socket.onopen = () =>
    // The session cookie goes with the upgrade; the payload carries no token.
    socket.send(JSON.stringify({ type: 'connection_init', payload: {} }));
  socket.onmessage = (message) => {
    const msg = JSON.parse(message.data);
    if (msg.type === 'connection_ack') {
      socket.send(JSON.stringify({ id: '1', type: 'subscribe', payload: { query, variables } }));
    } else if (msg.type === 'next') {
      if (msg.payload.errors?.length) end(new ApiError(msg.payload.errors));
      else onData(msg.payload.data);
    } else if (msg.type === 'error') {
      end(new ApiError(msg.payload));
    } else if (msg.type === 'complete') {
      end(null);
      socket.close();
    } else if (msg.type === 'ping') {
      socket.send(JSON.stringify({ type: 'pong' }));
    }
  };
  socket.onerror = () => end(new ApiError([{ message: 'websocket error', extensions: { code: 'NETWORK' } }]));
  socket.onclose = () => end(new ApiError([{ message: 'websocket closed', extensions: { code: 'NETWORK' } }]));
  return () => {
    ended = true;
    socket.close();
  };
}
