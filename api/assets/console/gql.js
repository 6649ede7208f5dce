// The console speaks only the public GraphQL API, like any other frontend: queries and
// mutations over HTTP, subscriptions over the websocket (graphql-transport-ws).

const TOKEN = 'checkout-crm.token';

/** The signed-in session's token, kept in this browser until sign-out. */
export const session = {
  get token() {
    return localStorage.getItem(TOKEN);
  },
  set(token) {
    if (token) localStorage.setItem(TOKEN, token);
    else localStorage.removeItem(TOKEN);
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
  session.set(null);
  window.dispatchEvent(new Event('crm:signed-out'));
}

/** Runs one operation; resolves to its data or rejects with an ApiError. */
export async function gql(query, variables = {}) {
  const headers = { 'Content-Type': 'application/json' };
  if (session.token) headers.Authorization = `Bearer ${session.token}`;
  let response;
  try {
    response = await fetch('/graphql', { method: 'POST', headers, body: JSON.stringify({ query, variables }) });
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
    if (error.code === 'UNAUTHENTICATED' && session.token) expired();
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
    socket.send(JSON.stringify({ type: 'connection_init', payload: { Authorization: `Bearer ${session.token}` } }));
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
