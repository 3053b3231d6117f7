/**
 * roomcast-client: a client for roomcast servers (wire protocol v1).
 *
 * ```ts
 * import { connect } from "roomcast-client";
 * const client = connect("wss://chat.example.com/ws", { getToken: () => fetchToken() });
 * client.on("chat", (data, frame) => console.log(frame.room, data));
 * await client.join("lobby");
 * client.publish("lobby", "chat", { text: "hi" });
 * const profile = await client.request("getProfile", { id: 7 });
 * ```
 *
 * It reconnects with exponential backoff and full jitter, authenticates again, rejoins every
 * room it was in, and tells the application (`resync`) so that it can refetch what it may have
 * missed. Close codes decide whether and how to retry (see `retryPolicy`).
 */

/** A WebSocket, as browsers, Node >= 22, Bun, Deno and the `ws` package provide it. */
export interface WebSocketLike {
  readonly readyState: number;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  onopen: ((event: unknown) => void) | null;
  onclose: ((event: { code: number; reason: string }) => void) | null;
  onerror: ((event: unknown) => void) | null;
  onmessage: ((event: { data: unknown }) => void) | null;
}

/** A WebSocket constructor (`globalThis.WebSocket`, or `ws`'s default export on Node 20). */
export type WebSocketConstructor = new (url: string) => WebSocketLike;

/** A frame from the server: `{"event","room"?,"id"?,"data"?}`. */
export interface Frame {
  event: string;
  room?: string;
  id?: string | number;
  data?: unknown;
}

/** A member of a room, as `presence` answers. */
export interface Member {
  id: string;
  userId: string | null;
  info?: unknown;
}

/** The client's connection state. */
export type State = "connecting" | "connected" | "reconnecting" | "disconnected";

/** How the client reconnects. */
export interface ReconnectOptions {
  /** The first retry waits up to this long (default 500 ms); each next one up to twice as long. */
  initialDelayMs?: number;
  /** The longest wait between attempts (default 30 s). */
  maxDelayMs?: number;
  /** Attempts in a row before giving up (default: unbounded). */
  maxAttempts?: number;
  /** The least wait after the server said to slow down (4008, 4009, 1013; default 5 s). */
  pauseMs?: number;
}

/** Options of {@link connect}. */
export interface ConnectOptions {
  /** A token for `authenticate` (a server that needs one). */
  token?: string;
  /** Where to get a token, now and whenever it must be renewed (expiry, 4001, 4003, 4004). */
  getToken?: () => string | Promise<string>;
  /** The WebSocket implementation; `globalThis.WebSocket` by default. */
  WebSocket?: WebSocketConstructor;
  /** Reconnection; `false` never reconnects. */
  reconnect?: ReconnectOptions | false;
  /** How long a request waits for its answer (default 10 s). */
  requestTimeoutMs?: number;
  /** A heartbeat is sent after this long without sending anything (default 20 s; 0: never). */
  heartbeatIntervalMs?: number;
  /** Publishes and fire-and-forget events kept while disconnected (default 256). */
  bufferSize?: number;
}

/** An error the server sent, or one of the client's own (see `code`). */
export class RoomcastError extends Error {
  /** The server's error code (`forbidden`, `invalid_room`, `unknown_event`, ...) or the client's
   * (`disconnected`, `timeout`, `buffer_full`, `closed`). */
  readonly code: string;
  /** The room an error is about, if any. */
  readonly room?: string;
  constructor(code: string, message: string, room?: string) {
    super(message);
    this.name = "RoomcastError";
    this.code = code;
    if (room !== undefined) this.room = room;
  }
}

/** A request that was in flight when the connection went away (code `disconnected`), or that
 * was made while disconnected. The server may or may not have acted on it. */
export class DisconnectedError extends RoomcastError {
  constructor(message = "not connected") {
    super("disconnected", message);
    this.name = "DisconnectedError";
  }
}

/** A request whose answer did not come within its timeout (code `timeout`). */
export class TimeoutError extends RoomcastError {
  constructor(message = "no answer in time") {
    super("timeout", message);
    this.name = "TimeoutError";
  }
}

/** The offline buffer is full (code `buffer_full`): the message was not kept. */
export class BufferFullError extends RoomcastError {
  constructor() {
    super("buffer_full", "the offline buffer is full");
    this.name = "BufferFullError";
  }
}

/** What a close code means for the next attempt. */
export type Retry =
  /** Reconnect after the backoff. */
  | "retry"
  /** Reconnect after at least `pauseMs`: the server asked to slow down. */
  | "pause"
  /** Get a new token through `getToken`, then reconnect; give up without `getToken`. */
  | "new_token"
  /** Do not reconnect. */
  | "stop";

/**
 * The client's policy per close code:
 * - 1000 (closed on purpose by the server or its API), 1002, 1003, 1007 (the client broke the
 *   protocol: retrying repeats it): stop;
 * - 4001 (authentication timeout), 4003 (rejected), 4004 (token expired): a new token, and stop
 *   if `getToken` gives the same token again after a 4003;
 * - 4008 (rate limited), 4009 (overloaded), 1013 (try again later): pause, then retry;
 * - everything else (network loss 1006, 1001 shutdown, 1011, 4002 heartbeat, 4005 slow
 *   consumer, ...): retry with backoff.
 */
export function retryPolicy(code: number): Retry {
  switch (code) {
    case 1000:
    case 1002:
    case 1003:
    case 1007:
      return "stop";
    case 4001:
    case 4003:
    case 4004:
      return "new_token";
    case 4008:
    case 4009:
    case 1013:
      return "pause";
    default:
      return "retry";
  }
}

type Handler = (data: any, frame: Frame) => void;

interface Pending {
  resolve: (value: any) => void;
  reject: (error: Error) => void;
  timer: ReturnType<typeof setTimeout> | undefined;
  /** For a join or leave: the refused rooms' errors, gathered until the answer that follows
   * them. `null`: an error settles the request at once. */
  errors: RoomcastError[] | null;
  /** The rejoin after a reconnection: a refused room is reported (`error`) and left out, and
   * the answer settles it with the rooms that were joined. */
  rejoin?: boolean;
}

/** Lifecycle events, emitted through `on` like the server's events. */
export const LIFECYCLE = ["connecting", "connected", "disconnected", "reconnecting", "resync", "error", "token_expiring"] as const;

const OPEN = 1;

/**
 * Opens a connection to a roomcast server and keeps it open: see {@link RoomcastClient}.
 */
export function connect(url: string, options: ConnectOptions = {}): RoomcastClient {
  return new RoomcastClient(url, options);
}

/** One logical connection to a roomcast server, across reconnections. */
export class RoomcastClient {
  /** The connection id the server gave (a new one after each reconnection). */
  id: string | null = null;
  /** The user id the server authenticated (`null` for an anonymous connection). */
  userId: string | null = null;
  /** The current state. */
  state: State = "connecting";

  readonly #url: string;
  readonly #WebSocket: WebSocketConstructor;
  readonly #options: Required<Omit<ConnectOptions, "token" | "getToken" | "WebSocket" | "reconnect">>;
  readonly #reconnect: Required<ReconnectOptions> | false;
  readonly #getToken: (() => string | Promise<string>) | undefined;
  #token: string | undefined;
  #ws: WebSocketLike | null = null;
  /** Rooms the application wants to be in: rejoined after a reconnection. */
  readonly #wanted = new Set<string>();
  /** Rooms the server last said the connection is in. */
  #rooms: string[] = [];
  readonly #pending = new Map<string, Pending>();
  /** Joins and leaves asked while disconnected: settled by the rejoin. */
  #waitingForRejoin: Array<{ rooms: string[]; resolve: (rooms: string[]) => void; reject: (e: Error) => void }> = [];
  readonly #handlers = new Map<string, Set<Handler>>();
  readonly #roomHandlers = new Map<string, Map<string, Set<Handler>>>();
  #buffer: string[] = [];
  #nextId = 1;
  #attempt = 0;
  #everConnected = false;
  #closed = false;
  #lastSent = 0;
  #heartbeat: ReturnType<typeof setInterval> | undefined;
  #retryTimer: ReturnType<typeof setTimeout> | undefined;
  /** The token that was rejected last (4003), so that the same one is not tried again. */
  #rejectedToken: string | undefined;

  constructor(url: string, options: ConnectOptions = {}) {
    const WebSocketImpl = options.WebSocket ?? (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket;
    if (!WebSocketImpl) {
      throw new Error("no WebSocket implementation: pass options.WebSocket (e.g. the ws package on Node 20)");
    }
    this.#url = url;
    this.#WebSocket = WebSocketImpl;
    this.#token = options.token;
    this.#getToken = options.getToken;
    this.#options = {
      requestTimeoutMs: options.requestTimeoutMs ?? 10_000,
      heartbeatIntervalMs: options.heartbeatIntervalMs ?? 20_000,
      bufferSize: options.bufferSize ?? 256,
    };
    this.#reconnect =
      options.reconnect === false
        ? false
        : {
            initialDelayMs: options.reconnect?.initialDelayMs ?? 500,
            maxDelayMs: options.reconnect?.maxDelayMs ?? 30_000,
            maxAttempts: options.reconnect?.maxAttempts ?? Number.POSITIVE_INFINITY,
            pauseMs: options.reconnect?.pauseMs ?? 5_000,
          };
    queueMicrotask(() => this.#open());
  }

  /** The rooms the server last said this connection is in. */
  rooms(): string[] {
    return [...this.#rooms];
  }

  /**
   * Handles the server's event `event` (`(data, frame)`), or a lifecycle event: `connecting`,
   * `connected` (`{id, userId, reconnected}`), `disconnected` (`{code, reason, willReconnect}`),
   * `reconnecting` (`{attempt, delayMs}`), `resync` (`{room, reason}`: messages may have been
   * missed), `error` (a `RoomcastError` nobody waited for), `token_expiring`. Returns a function
   * that removes the handler.
   */
  on(event: string, handler: Handler): () => void {
    let set = this.#handlers.get(event);
    if (!set) this.#handlers.set(event, (set = new Set()));
    set.add(handler);
    return () => set.delete(handler);
  }

  /** Handles event `event` delivered because of room `room` only. */
  onRoom(room: string, event: string, handler: Handler): () => void {
    let events = this.#roomHandlers.get(room);
    if (!events) this.#roomHandlers.set(room, (events = new Map()));
    let set = events.get(event);
    if (!set) events.set(event, (set = new Set()));
    set.add(handler);
    return () => set.delete(handler);
  }

  /**
   * Joins rooms; resolves with every room the connection is in. Refused rooms reject it with
   * the first refusal (the others are joined). While disconnected, it resolves once the rooms
   * are joined after the reconnection. Joined rooms are rejoined after every reconnection.
   */
  join(...rooms: Array<string | string[]>): Promise<string[]> {
    const names = rooms.flat();
    for (const room of names) this.#wanted.add(room);
    return this.#roomsRequest("join", names);
  }

  /** Leaves rooms (they are not rejoined); resolves with the rooms the connection is still in. */
  leave(...rooms: Array<string | string[]>): Promise<string[]> {
    const names = rooms.flat();
    for (const room of names) this.#wanted.delete(room);
    return this.#roomsRequest("leave", names);
  }

  /**
   * Publishes `event` with `data` to the members of `room` (this connection must be one).
   * The sender is left out unless `excludeSelf: false`; `excludeUser: true` leaves out every
   * session of the sender's user (the sender's included). Kept in the offline buffer while disconnected; throws
   * `BufferFullError` when it is full.
   */
  publish(room: string, event: string, data?: unknown, options: { excludeSelf?: boolean; excludeUser?: boolean } = {}): void {
    const body: Record<string, unknown> = { room, event };
    if (data !== undefined) body.data = data;
    if (options.excludeSelf !== undefined) body.excludeSelf = options.excludeSelf;
    if (options.excludeUser !== undefined) body.excludeUser = options.excludeUser;
    this.#sendOrBuffer({ event: "publish", data: body });
  }

  /** Sends the application's own event without waiting for an answer (buffered offline). */
  emit(event: string, data?: unknown): void {
    this.#sendOrBuffer(data === undefined ? { event } : { event, data });
  }

  /**
   * Sends the application's own event and resolves with the server's `reply` data, or rejects
   * with its `error` (`RoomcastError`), a `TimeoutError`, or a `DisconnectedError` (made while
   * disconnected, or in flight when the connection went away).
   */
  request<T = unknown>(event: string, data?: unknown, options: { timeoutMs?: number } = {}): Promise<T> {
    if (this.state !== "connected") return Promise.reject(new DisconnectedError());
    return this.#call<T>(event, data, options.timeoutMs);
  }

  /** Who is in `room` (this connection must be a member). */
  async presence(room: string): Promise<Member[]> {
    const answer = await this.request<{ members: Member[] }>("presence", { room });
    return answer.members;
  }

  /** Sends fresh credentials now (`refresh`); resolves with the seconds they last, or `null`. */
  async refresh(token?: string): Promise<number | null> {
    const fresh = token ?? (await this.#fetchToken());
    if (fresh === undefined) throw new RoomcastError("no_token", "no token to refresh with: pass one, or give getToken");
    this.#token = fresh;
    const answer = await this.request<{ expiresIn: number | null }>("refresh", { token: fresh });
    return answer.expiresIn;
  }

  /** Closes the connection for good (1000): no reconnection; pending requests reject. */
  close(): void {
    this.#closed = true;
    clearTimeout(this.#retryTimer);
    this.#stopHeartbeat();
    const ws = this.#ws;
    this.#ws = null;
    this.#failPending(new RoomcastError("closed", "the client was closed"));
    for (const waiting of this.#waitingForRejoin) waiting.reject(new RoomcastError("closed", "the client was closed"));
    this.#waitingForRejoin = [];
    this.#buffer = [];
    if (ws) {
      ws.onclose = null;
      ws.close(1000, "client closed");
    }
    if (this.state !== "disconnected") {
      this.state = "disconnected";
      this.#emit("disconnected", { code: 1000, reason: "client closed", willReconnect: false });
    }
  }

  // --- the connection ---

  async #open(): Promise<void> {
    if (this.#closed) return;
    this.state = this.#everConnected ? "reconnecting" : "connecting";
    this.#emit("connecting", { attempt: this.#attempt });
    let ws: WebSocketLike;
    try {
      ws = new this.#WebSocket(this.#url);
    } catch (e) {
      this.#onClose(1006, String(e));
      return;
    }
    this.#ws = ws;
    ws.onopen = () => {
      void this.#authenticate(ws);
    };
    ws.onmessage = (message) => {
      if (typeof message.data !== "string") return;
      let frame: Frame;
      try {
        frame = JSON.parse(message.data) as Frame;
      } catch {
        return;
      }
      this.#onFrame(frame);
    };
    ws.onerror = () => {};
    ws.onclose = (event) => {
      if (this.#ws === ws) this.#onClose(event.code, event.reason);
    };
  }

  async #authenticate(ws: WebSocketLike): Promise<void> {
    if (this.#token === undefined && this.#getToken) {
      try {
        this.#token = await this.#getToken();
      } catch (e) {
        this.#emit("error", new RoomcastError("no_token", `getToken failed: ${String(e)}`));
        ws.close(4000, "no token");
        return;
      }
    }
    if (this.#token !== undefined && this.#ws === ws && ws.readyState === OPEN) {
      this.#raw(ws, { event: "authenticate", data: { token: this.#token } });
    }
  }

  #onConnected(frame: Frame): void {
    const data = (frame.data ?? {}) as { id?: string; userId?: string | null };
    const reconnected = this.#everConnected;
    this.id = data.id ?? null;
    this.userId = data.userId ?? null;
    this.state = "connected";
    this.#everConnected = true;
    this.#attempt = 0;
    this.#rejectedToken = undefined;
    this.#startHeartbeat();
    const rooms = [...this.#wanted];
    const waiting = this.#waitingForRejoin;
    this.#waitingForRejoin = [];
    if (rooms.length > 0) {
      this.#call<{ rooms: string[]; errors: RoomcastError[] }>("join", { rooms }, undefined, true, true).then(
        (answer) => {
          for (const w of waiting) {
            // A join asked while offline fails with the refusal of one of its rooms, as online.
            const refused = answer.errors.find((e) => e.room !== undefined && w.rooms.includes(e.room));
            if (refused) w.reject(refused);
            else w.resolve(answer.rooms);
          }
          // Refusals nobody waits for (rooms the server had put the connection in): reported.
          for (const e of answer.errors) {
            if (!waiting.some((w) => e.room !== undefined && w.rooms.includes(e.room))) this.#emit("error", e);
          }
          if (reconnected) for (const room of answer.rooms) this.#emit("resync", { room, reason: "reconnected" });
        },
        (error: Error) => {
          for (const w of waiting) w.reject(error);
        },
      );
    } else {
      for (const w of waiting) w.resolve([]);
    }
    this.#emit("connected", { id: this.id, userId: this.userId, reconnected });
    // Behind the rejoin: publishes kept offline reach the rooms they were meant for.
    const buffered = this.#buffer;
    this.#buffer = [];
    for (const text of buffered) this.#sendText(text);
  }

  #onFrame(frame: Frame): void {
    const id = frame.id === undefined ? undefined : String(frame.id);
    const pending = id === undefined ? undefined : this.#pending.get(id);
    switch (frame.event) {
      case "connected":
        this.#onConnected(frame);
        return;
      case "joined":
      case "left": {
        const rooms = ((frame.data ?? {}) as { rooms?: string[] }).rooms ?? [];
        this.#rooms = rooms;
        if (pending && id !== undefined) {
          this.#settle(id);
          if (pending.errors && pending.errors.length > 0 && !pending.rejoin) pending.reject(pending.errors[0]);
          else pending.resolve({ rooms, errors: pending.errors ?? [] });
        } else if (frame.event === "joined") {
          // Joined by the application or the API: rejoined after a reconnection too.
          for (const room of rooms) this.#wanted.add(room);
        } else {
          for (const room of [...this.#wanted]) if (!rooms.includes(room)) this.#wanted.delete(room);
        }
        this.#dispatch(frame);
        return;
      }
      case "error": {
        const data = (frame.data ?? {}) as { code?: string; message?: string; room?: string };
        const error = new RoomcastError(data.code ?? "error", data.message ?? "", data.room);
        if (pending && id !== undefined) {
          if (data.room !== undefined && pending.errors) {
            // A refused room of a join or leave: the answer follows. It is not rejoined. The
            // rejoin goes on past one (a room the server put the connection in, whose policy
            // keeps it the server's), and reports it.
            pending.errors.push(error);
            this.#wanted.delete(data.room);
          } else {
            this.#settle(id);
            pending.reject(error);
          }
        } else {
          this.#emit("error", error);
        }
        return;
      }
      case "reply":
      case "presence":
      case "refreshed":
        if (pending && id !== undefined) {
          this.#settle(id);
          pending.resolve(frame.data);
          return;
        }
        break;
      case "token_expiring":
        this.#emit("token_expiring", frame.data, frame);
        if (this.#getToken) {
          this.refresh().catch((error: Error) => this.#emit("error", error));
        }
        return;
      case "resync":
        this.#emit("resync", { room: frame.room, reason: (frame.data as { reason?: string } | undefined)?.reason });
        return;
    }
    this.#dispatch(frame);
  }

  #onClose(code: number, reason: string): void {
    this.#ws = null;
    this.#stopHeartbeat();
    this.#failPending(new DisconnectedError(`connection closed (${code}${reason ? `: ${reason}` : ""})`));
    this.id = null;
    void this.#decide(code, reason);
  }

  async #decide(code: number, reason: string): Promise<void> {
    let retry = this.#reconnect === false || this.#closed ? "stop" : retryPolicy(code);
    if (retry === "new_token") {
      const previous = this.#token;
      const fresh = this.#getToken ? await this.#fetchToken() : undefined;
      if (fresh === undefined || (code === 4003 && (fresh === previous || fresh === this.#rejectedToken))) {
        retry = "stop";
      } else {
        if (code === 4003) this.#rejectedToken = previous;
        this.#token = fresh;
        retry = "retry";
      }
    }
    const config = this.#reconnect;
    if (config !== false && this.#attempt >= config.maxAttempts) retry = "stop";
    const willReconnect = retry !== "stop";
    this.state = willReconnect ? "reconnecting" : "disconnected";
    this.#emit("disconnected", { code, reason, willReconnect });
    if (!willReconnect || config === false) {
      this.#buffer = [];
      for (const waiting of this.#waitingForRejoin) waiting.reject(new DisconnectedError());
      this.#waitingForRejoin = [];
      return;
    }
    // Full jitter: a random wait up to the exponential bound, so that a thousand clients of a
    // restarted server do not all come back in the same millisecond.
    const bound = Math.min(config.maxDelayMs, config.initialDelayMs * 2 ** this.#attempt);
    let delayMs = Math.random() * bound;
    if (retry === "pause") delayMs = Math.max(delayMs, config.pauseMs);
    this.#attempt += 1;
    this.#emit("reconnecting", { attempt: this.#attempt, delayMs });
    this.#retryTimer = setTimeout(() => void this.#open(), delayMs);
  }

  async #fetchToken(): Promise<string | undefined> {
    if (!this.#getToken) return this.#token;
    try {
      return await this.#getToken();
    } catch (e) {
      this.#emit("error", new RoomcastError("no_token", `getToken failed: ${String(e)}`));
      return undefined;
    }
  }

  // --- requests ---

  #roomsRequest(kind: "join" | "leave", rooms: string[]): Promise<string[]> {
    if (this.state !== "connected") {
      // A leave's rooms cannot be refused by the rejoin (they are not in it).
      const asked = kind === "join" ? rooms : [];
      return new Promise((resolve, reject) => this.#waitingForRejoin.push({ rooms: asked, resolve, reject }));
    }
    return this.#call<{ rooms: string[] }>(kind, { rooms }, undefined, true).then((answer) => answer.rooms);
  }

  #call<T>(event: string, data: unknown, timeoutMs: number | undefined, gathersErrors = false, rejoin = false): Promise<T> {
    const id = `r${this.#nextId++}`;
    return new Promise<T>((resolve, reject) => {
      const wait = timeoutMs ?? this.#options.requestTimeoutMs;
      const timer =
        wait > 0
          ? setTimeout(() => {
              if (this.#pending.delete(id)) reject(new TimeoutError(`no answer to ${event} within ${wait} ms`));
            }, wait)
          : undefined;
      this.#pending.set(id, { resolve, reject, timer, errors: gathersErrors ? [] : null, rejoin });
      const frame: Frame = data === undefined ? { event, id } : { event, id, data };
      if (!this.#sendText(JSON.stringify(frame))) {
        this.#settle(id);
        reject(new DisconnectedError());
      }
    });
  }

  #settle(id: string): void {
    const pending = this.#pending.get(id);
    if (pending) clearTimeout(pending.timer);
    this.#pending.delete(id);
  }

  #failPending(error: Error): void {
    const all = [...this.#pending.values()];
    this.#pending.clear();
    for (const pending of all) {
      clearTimeout(pending.timer);
      pending.reject(error);
    }
  }

  // --- sending ---

  #sendOrBuffer(frame: Frame): void {
    const text = JSON.stringify(frame);
    if (this.state === "connected" && this.#sendText(text)) return;
    if (this.#closed) throw new RoomcastError("closed", "the client was closed");
    if (this.#buffer.length >= this.#options.bufferSize) throw new BufferFullError();
    this.#buffer.push(text);
  }

  #sendText(text: string): boolean {
    const ws = this.#ws;
    if (!ws || ws.readyState !== OPEN) return false;
    ws.send(text);
    this.#lastSent = Date.now();
    return true;
  }

  #raw(ws: WebSocketLike, frame: Frame): void {
    ws.send(JSON.stringify(frame));
    this.#lastSent = Date.now();
  }

  #startHeartbeat(): void {
    this.#stopHeartbeat();
    const every = this.#options.heartbeatIntervalMs;
    if (every <= 0) return;
    this.#heartbeat = setInterval(() => {
      if (Date.now() - this.#lastSent >= every) this.#sendText('{"event":"heartbeat"}');
    }, every);
  }

  #stopHeartbeat(): void {
    clearInterval(this.#heartbeat);
    this.#heartbeat = undefined;
  }

  // --- handlers ---

  #dispatch(frame: Frame): void {
    this.#emit(frame.event, frame.data, frame);
    if (frame.room !== undefined) {
      const set = this.#roomHandlers.get(frame.room)?.get(frame.event);
      if (set) for (const handler of [...set]) this.#run(handler, frame.data, frame);
    }
  }

  #emit(event: string, data: unknown, frame?: Frame): void {
    const set = this.#handlers.get(event);
    if (!set) return;
    const f = frame ?? { event, data };
    for (const handler of [...set]) this.#run(handler, data, f);
  }

  #run(handler: Handler, data: unknown, frame: Frame): void {
    try {
      handler(data, frame);
    } catch (e) {
      // A handler's failure is the application's; the connection carries on.
      setTimeout(() => {
        throw e;
      });
    }
  }
}
