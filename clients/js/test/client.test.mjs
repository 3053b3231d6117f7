// roomcast-client against the real `roomcast` binary, over real loopback sockets, on Node's
// test runner. Node 20 has no global WebSocket: the `ws` package is passed in, as users do.
import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync } from "node:fs";
import { createServer } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import WebSocket from "ws";

import { BufferFullError, DisconnectedError, RoomcastError, TimeoutError, connect, retryPolicy } from "../dist/index.js";
import { Server, jwt, next, now, until } from "./helpers.mjs";

const fast = { initialDelayMs: 50, maxDelayMs: 200 };
const clients = [];
const servers = [];
function client(url, options = {}) {
  const c = connect(url, { WebSocket, reconnect: fast, ...options });
  clients.push(c);
  return c;
}
async function server(args = []) {
  const s = await Server.start(args);
  servers.push(s);
  return s;
}
after(async () => {
  for (const c of clients) c.close();
  for (const s of servers) await s.kill();
});

/** An RPC backend: `getProfile` answers, `fail` errs, `slow` answers after 10 s. */
async function backend() {
  const http = createServer((request, response) => {
    let body = "";
    request.on("data", (chunk) => (body += chunk));
    request.on("end", () => {
      const call = JSON.parse(body);
      const answer = (value) => response.end(JSON.stringify(value));
      if (call.event === "getProfile") answer({ result: { user: call.userId, asked: call.data } });
      else if (call.event === "fail") answer({ error: { code: "not_found", message: "no such profile" } });
      else if (call.event === "slow") setTimeout(() => answer({ result: "late" }), 10_000).unref();
      else answer({ result: null });
    });
  });
  await new Promise((r) => http.listen(0, "127.0.0.1", r));
  after(() => http.close());
  return `http://127.0.0.1:${http.address().port}/rpc`;
}

test("two clients join a room and a publish reaches the other, on on() and onRoom()", async () => {
  const s = await server();
  const a = client(s.url);
  const b = client(s.url);
  assert.deepEqual(await a.join("lobby"), ["lobby"]);
  assert.deepEqual(await b.join(["lobby", "news"]), ["lobby", "news"]);
  const seen = next(b, "chat");
  const inRoom = new Promise((resolve) => b.onRoom("lobby", "chat", (data) => resolve(data)));
  a.publish("lobby", "chat", { text: "hi" });
  const { data, frame } = await seen;
  assert.deepEqual(data, { text: "hi" });
  assert.equal(frame.room, "lobby");
  assert.deepEqual(await inRoom, { text: "hi" });
  assert.deepEqual(b.rooms(), ["lobby", "news"]);
  assert.deepEqual(await b.leave("news"), ["lobby"]);
  const members = await a.presence("lobby");
  assert.equal(members.length, 2);
});

test("a refused room rejects join with the server's error; the others are joined", async () => {
  const s = await server(["--max-room-name-bytes", "8"]);
  const a = client(s.url);
  await assert.rejects(a.join("ok", "much-too-long-a-name"), (e) => e instanceof RoomcastError && e.code === "invalid_room" && e.room === "much-too-long-a-name");
  assert.deepEqual(a.rooms(), ["ok"]);
});

test("request resolves with the backend's result, rejects with its error, and times out", async () => {
  const s = await server(["--proxy-rpc", await backend()]);
  const a = client(s.url);
  await next(a, "connected");
  assert.deepEqual(await a.request("getProfile", { id: 7 }), { user: null, asked: { id: 7 } });
  await assert.rejects(a.request("fail"), (e) => e instanceof RoomcastError && e.code === "not_found" && e.message === "no such profile");
  await assert.rejects(a.request("slow", null, { timeoutMs: 100 }), TimeoutError);

  const plain = await server();
  const b = client(plain.url);
  await next(b, "connected");
  await assert.rejects(b.request("anything"), (e) => e.code === "unknown_event");
});

test("after the server is killed and restarted, clients reconnect, rejoin, resync and chat again", async () => {
  const s = await server(["--proxy-rpc", await backend()]);
  const a = client(s.url);
  const b = client(s.url);
  await a.join("lobby");
  await b.join("lobby");
  const inFlight = assert.rejects(a.request("slow"), DisconnectedError, "in flight at the drop");
  const dropped = [next(a, "disconnected"), next(b, "disconnected")];
  await s.kill();
  await inFlight;
  for (const { data } of await Promise.all(dropped)) {
    assert.equal(data.willReconnect, true);
    assert.equal(data.code, 1006);
  }
  assert.equal(a.state, "reconnecting");
  await assert.rejects(a.request("getProfile"), DisconnectedError, "a request while disconnected");
  // Kept offline, sent after the rejoin: the sender hears its own message.
  a.publish("lobby", "while-down", 1, { excludeSelf: false });
  const resyncs = [next(a, "resync"), next(b, "resync")];
  const echoed = next(a, "while-down");
  await s.restart();
  for (const { data } of await Promise.all(resyncs)) assert.deepEqual(data, { room: "lobby", reason: "reconnected" });
  assert.equal((await echoed).data, 1);
  assert.equal(a.state, "connected");
  const heard = next(b, "chat");
  a.publish("lobby", "chat", "after the restart");
  assert.equal((await heard).data, "after the restart");
});

test("a room the server put the client in and its policy keeps the server's is not rejoined; the rest resyncs", async () => {
  // `desk` rooms are the server's (the API puts clients in); `lobby` is anyone's.
  const dir = mkdtempSync(join(tmpdir(), "roomcast-policy-"));
  const config = join(dir, "roomcast.toml");
  writeFileSync(config, '[[rooms]]\npattern = "desk:*"\njoin = "server"\n');
  const s = await server(["--config", config, "--api-key", "k"]);
  const a = client(s.url);
  await a.join("lobby");
  const joinedByServer = next(a, "joined");
  const { status } = await s.api("POST", `/api/rooms/desk:1/join?conn=${a.id}`, "k");
  assert.equal(status, 200);
  await joinedByServer;
  assert.deepEqual(a.rooms(), ["lobby", "desk:1"]);
  const dropped = next(a, "disconnected");
  await s.kill();
  await dropped;
  const refused = next(a, "error");
  const resync = next(a, "resync");
  await s.restart();
  const { data: error } = await refused;
  assert.equal(error.code, "forbidden");
  assert.equal(error.room, "desk:1");
  assert.deepEqual((await resync).data, { room: "lobby", reason: "reconnected" });
  assert.deepEqual(a.rooms(), ["lobby"]);
  // Nor can the client leave such a room by itself.
  await s.api("POST", `/api/rooms/desk:1/join?conn=${a.id}`, "k");
  await until("the server's join", () => a.rooms().includes("desk:1"));
  await assert.rejects(a.leave("desk:1"), (e) => e instanceof RoomcastError && e.code === "forbidden" && e.room === "desk:1");
  assert.deepEqual(a.rooms(), ["lobby", "desk:1"]);
});

test("an expiring token is refreshed through getToken and the connection stays", async () => {
  // Notice 2 s before the end: the refresh has 2 s to arrive, however busy the machine.
  const s = await server(["--jwt-secret", "sekret", "--token-refresh-notice", "2s"]);
  // Two tokens that live 4 s, then a long one: the connection outlives two expiries.
  const expiries = [];
  const getToken = () => {
    const exp = now() + (expiries.length < 2 ? 4 : 3600);
    expiries.push(exp);
    return jwt({ sub: "ann", exp }, "sekret");
  };
  const a = client(s.url, { getToken });
  let notices = 0;
  const lost = [];
  a.on("token_expiring", () => notices++);
  a.on("disconnected", (data) => lost.push(["disconnected", data]));
  const connected = await next(a, "connected");
  assert.equal(connected.data.userId, "ann");
  const id = a.id;
  a.on("connected", (data) => lost.push(["connected again", data]));
  await until("both short tokens noticed", () => notices >= 2);
  // Past the second token's end by the server's clock (whole seconds)...
  await until("the second token's end", () => now() > expiries[1]);
  // ...a request answered: the hub expires what is due before it handles an input, so an
  // unrefreshed connection would have been closed (4004) instead.
  assert.deepEqual(await a.join("still-here"), ["still-here"]);
  assert.equal(expiries.length, 3, "one token per expiry, and the first");
  assert.equal(a.id, id, "the same connection throughout");
  assert.deepEqual(lost, [], "never disconnected");
});

test("a refused token stops retrying unless getToken gives another; an expired static token stops", async () => {
  const s = await server(["--jwt-secret", "sekret"]);
  const refused = client(s.url, { token: "not-a-jwt" });
  const { data } = await next(refused, "disconnected");
  assert.deepEqual([data.code, data.willReconnect], [4003, false]);
  assert.equal(refused.state, "disconnected");

  let n = 0;
  const second = client(s.url, { getToken: () => (n++ === 0 ? "bad" : jwt({ sub: "bob" }, "sekret")) });
  const first = await next(second, "disconnected");
  assert.deepEqual([first.data.code, first.data.willReconnect], [4003, true]);
  assert.equal((await next(second, "connected")).data.userId, "bob");

  // Valid for 2-3 s (whole seconds): long enough to be accepted on a busy machine, then 4004.
  const expiring = client(s.url, { token: jwt({ sub: "cy", exp: now() + 3 }, "sekret") });
  const gone = await next(expiring, "disconnected", 10_000);
  assert.deepEqual([gone.data.code, gone.data.willReconnect], [4004, false]);
});

test("the server's own disconnect (1000) is final; the offline buffer is bounded", async () => {
  const s = await server(["--api-key", "k"]);
  const a = client(s.url);
  const { data } = await next(a, "connected");
  const dropped = next(a, "disconnected");
  const answer = await s.api("POST", `/api/connections/${data.id}/disconnect`, "k");
  assert.equal(answer.status, 200);
  const closed = await dropped;
  assert.deepEqual([closed.data.code, closed.data.willReconnect], [1000, false]);

  const b = client(s.url, { bufferSize: 2, reconnect: { initialDelayMs: 60_000, maxDelayMs: 60_000 } });
  await next(b, "connected");
  const down = next(b, "disconnected");
  await s.kill();
  await down;
  b.publish("r", "e", 1);
  b.emit("e", 2);
  assert.throws(() => b.publish("r", "e", 3), BufferFullError);
});

test("the retry policy by close code", () => {
  for (const code of [1000, 1002, 1003, 1007]) assert.equal(retryPolicy(code), "stop", String(code));
  for (const code of [4001, 4003, 4004]) assert.equal(retryPolicy(code), "new_token", String(code));
  for (const code of [4008, 4009, 1013]) assert.equal(retryPolicy(code), "pause", String(code));
  for (const code of [1001, 1006, 1011, 4002, 4005]) assert.equal(retryPolicy(code), "retry", String(code));
});
