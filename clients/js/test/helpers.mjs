// Test support: the real `roomcast` binary on a loopback port it picks itself (no port bound
// and released for it: another process could take that one first), killed and restarted on the
// same port; HS256 tokens; waiting for a condition.
import { spawn } from "node:child_process";
import { createHmac } from "node:crypto";
import { fileURLToPath } from "node:url";

export const BINARY =
  process.env.ROOMCAST_BIN ?? fileURLToPath(new URL("../../../target/debug/roomcast", import.meta.url));

/** Waits until `check()` is truthy (polling), or fails after `ms`. */
export async function until(what, check, ms = 20_000) {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** The next event `event` of `client` (a lifecycle event or a server event). */
export function next(client, event, ms = 20_000) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no ${event} in time`)), ms);
    const off = client.on(event, (data, frame) => {
      clearTimeout(timer);
      off();
      resolve({ data, frame });
    });
  });
}

/** A roomcast server process; `restart()` starts it again on the same port. */
export class Server {
  constructor(args = []) {
    this.args = args;
    this.port = 0;
    this.child = null;
  }

  static async start(args = []) {
    const server = new Server(args);
    await server.restart();
    return server;
  }

  get url() {
    return `ws://127.0.0.1:${this.port}/ws`;
  }

  /** Starts the process: on a port of its choosing the first time (read from its log), then on
   * that same port. */
  async restart() {
    this.child = spawn(BINARY, ["serve", "--listen", `127.0.0.1:${this.port}`, ...this.args], {
      stdio: ["ignore", "ignore", "pipe"],
      env: { ...process.env, RUST_LOG: "warn,roomcast=info" },
    });
    const child = this.child;
    let exited = null;
    let listening = null;
    child.once("exit", (code) => (exited = code));
    let pending = "";
    child.stderr.setEncoding("utf8");
    child.stderr.on("data", (chunk) => {
      const lines = (pending + chunk).split("\n");
      pending = lines.pop();
      for (const line of lines) {
        const found = / listen=127\.0\.0\.1:(\d+)/.exec(line);
        if (found) listening = Number(found[1]);
        else if (!line.includes(" INFO ")) process.stderr.write(line + "\n");
      }
    });
    await until("the server to listen", () => {
      if (exited !== null) throw new Error(`the server exited with ${exited}`);
      return listening !== null;
    });
    this.port = listening;
    await until("the server to answer /healthz", async () => {
      if (exited !== null) throw new Error(`the server exited with ${exited}`);
      try {
        return (await fetch(`http://127.0.0.1:${this.port}/healthz`)).ok;
      } catch {
        return false;
      }
    });
  }

  /** kill -9: no close frames, as a crash. */
  async kill() {
    const child = this.child;
    if (!child || child.exitCode !== null) return;
    const gone = new Promise((r) => child.once("exit", r));
    child.kill("SIGKILL");
    await gone;
  }

  /** An HTTP call to the server API. */
  async api(method, path, key, body) {
    const response = await fetch(`http://127.0.0.1:${this.port}${path}`, {
      method,
      headers: { authorization: `Bearer ${key}` },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    return { status: response.status, body: await response.json() };
  }
}

/** An HS256 JWT. */
export function jwt(claims, secret) {
  const b64 = (value) => Buffer.from(JSON.stringify(value)).toString("base64url");
  const unsigned = `${b64({ alg: "HS256", typ: "JWT" })}.${b64(claims)}`;
  const signature = createHmac("sha256", secret).update(unsigned).digest("base64url");
  return `${unsigned}.${signature}`;
}

export const now = () => Math.floor(Date.now() / 1000);
