// Rival: Bun's native pub/sub (uWebSockets), speaking roomcast's protocol subset:
// join -> joined, publish -> {"event","room","data"} to the room's other members.
// Run: bun server.js PORT
const port = Number(process.argv[2] || 8081);
Bun.serve({
  port,
  hostname: "127.0.0.1",
  fetch(req, server) {
    if (server.upgrade(req, { data: { rooms: [] } })) return;
    return new Response("websocket only", { status: 400 });
  },
  websocket: {
    idleTimeout: 120,
    message(ws, raw) {
      let frame;
      try { frame = JSON.parse(raw); } catch { return; }
      if (frame.event === "join") {
        for (const room of frame.data.rooms) {
          ws.subscribe(room);
          if (!ws.data.rooms.includes(room)) ws.data.rooms.push(room);
        }
        ws.send(JSON.stringify({ event: "joined", id: frame.id, data: { rooms: ws.data.rooms } }));
      } else if (frame.event === "publish") {
        const d = frame.data;
        // ws.publish skips the sender, like roomcast's default excludeSelf.
        ws.publish(d.room, JSON.stringify({ event: d.event, room: d.room, data: d.data }));
      }
    },
  },
});
console.log(`bun rival on ws://127.0.0.1:${port}/`);
