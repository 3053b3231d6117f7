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
    onclose: ((event: {
        code: number;
        reason: string;
    }) => void) | null;
    onerror: ((event: unknown) => void) | null;
    onmessage: ((event: {
        data: unknown;
    }) => void) | null;
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
export declare class RoomcastError extends Error {
    /** The server's error code (`forbidden`, `invalid_room`, `unknown_event`, ...) or the client's
     * (`disconnected`, `timeout`, `buffer_full`, `closed`). */
    readonly code: string;
    /** The room an error is about, if any. */
    readonly room?: string;
    constructor(code: string, message: string, room?: string);
}
/** A request that was in flight when the connection went away (code `disconnected`), or that
 * was made while disconnected. The server may or may not have acted on it. */
export declare class DisconnectedError extends RoomcastError {
    constructor(message?: string);
}
/** A request whose answer did not come within its timeout (code `timeout`). */
export declare class TimeoutError extends RoomcastError {
    constructor(message?: string);
}
/** The offline buffer is full (code `buffer_full`): the message was not kept. */
export declare class BufferFullError extends RoomcastError {
    constructor();
}
/** What a close code means for the next attempt. */
export type Retry = 
/** Reconnect after the backoff. */
"retry"
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
export declare function retryPolicy(code: number): Retry;
type Handler = (data: any, frame: Frame) => void;
/** Lifecycle events, emitted through `on` like the server's events. */
export declare const LIFECYCLE: readonly ["connecting", "connected", "disconnected", "reconnecting", "resync", "error", "token_expiring"];
/**
 * Opens a connection to a roomcast server and keeps it open: see {@link RoomcastClient}.
 */
export declare function connect(url: string, options?: ConnectOptions): RoomcastClient;
/** One logical connection to a roomcast server, across reconnections. */
export declare class RoomcastClient {
    #private;
    /** The connection id the server gave (a new one after each reconnection). */
    id: string | null;
    /** The user id the server authenticated (`null` for an anonymous connection). */
    userId: string | null;
    /** The current state. */
    state: State;
    constructor(url: string, options?: ConnectOptions);
    /** The rooms the server last said this connection is in. */
    rooms(): string[];
    /**
     * Handles the server's event `event` (`(data, frame)`), or a lifecycle event: `connecting`,
     * `connected` (`{id, userId, reconnected}`), `disconnected` (`{code, reason, willReconnect}`),
     * `reconnecting` (`{attempt, delayMs}`), `resync` (`{room, reason}`: messages may have been
     * missed), `error` (a `RoomcastError` nobody waited for), `token_expiring`. Returns a function
     * that removes the handler.
     */
    on(event: string, handler: Handler): () => void;
    /** Handles event `event` delivered because of room `room` only. */
    onRoom(room: string, event: string, handler: Handler): () => void;
    /**
     * Joins rooms; resolves with every room the connection is in. Refused rooms reject it with
     * the first refusal (the others are joined). While disconnected, it resolves once the rooms
     * are joined after the reconnection. Joined rooms are rejoined after every reconnection.
     */
    join(...rooms: Array<string | string[]>): Promise<string[]>;
    /** Leaves rooms (they are not rejoined); resolves with the rooms the connection is still in. */
    leave(...rooms: Array<string | string[]>): Promise<string[]>;
    /**
     * Publishes `event` with `data` to the members of `room` (this connection must be one).
     * The sender is left out unless `excludeSelf: false`; `excludeUser: true` leaves out every
     * session of the sender's user (the sender's included). Kept in the offline buffer while disconnected; throws
     * `BufferFullError` when it is full.
     */
    publish(room: string, event: string, data?: unknown, options?: {
        excludeSelf?: boolean;
        excludeUser?: boolean;
    }): void;
    /** Sends the application's own event without waiting for an answer (buffered offline). */
    emit(event: string, data?: unknown): void;
    /**
     * Sends the application's own event and resolves with the server's `reply` data, or rejects
     * with its `error` (`RoomcastError`), a `TimeoutError`, or a `DisconnectedError` (made while
     * disconnected, or in flight when the connection went away).
     */
    request<T = unknown>(event: string, data?: unknown, options?: {
        timeoutMs?: number;
    }): Promise<T>;
    /** Who is in `room` (this connection must be a member). */
    presence(room: string): Promise<Member[]>;
    /** Sends fresh credentials now (`refresh`); resolves with the seconds they last, or `null`. */
    refresh(token?: string): Promise<number | null>;
    /** Closes the connection for good (1000): no reconnection; pending requests reject. */
    close(): void;
}
export {};
