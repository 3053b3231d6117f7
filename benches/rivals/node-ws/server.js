// Rival: Node.js `ws` with a Map<room, Set<socket>> fan-out loop (as the moost and pxl seed
// frameworks do), speaking roomcast's protocol subset. Run: node server.js PORT
const { WebSocketServer } = require("ws");
const port = Number(process.argv[2] || 8082);
const rooms = new Map();
const wss = new WebSocketServer({ host: "127.0.0.1", port, perMessageDeflate: false });
wss.on("connection", (ws) => {
  const mine = new Set();
  ws.on("message", (raw) => {
    let frame;
    try { frame = JSON.parse(raw); } catch { return; }
    if (frame.event === "join") {
      for (const room of frame.data.rooms) {
        if (!rooms.has(room)) rooms.set(room, new Set());
        rooms.get(room).add(ws);
        mine.add(room);
      }
      ws.send(JSON.stringify({ event: "joined", id: frame.id, data: { rooms: [...mine] } }));
    } else if (frame.event === "publish") {
      const d = frame.data;
      const members = rooms.get(d.room);
      if (!members) return;
      const out = JSON.stringify({ event: d.event, room: d.room, data: d.data }); // serialized once
      for (const peer of members) if (peer !== ws && peer.readyState === 1) peer.send(out);
    }
  });
  ws.on("close", () => {
    for (const room of mine) {
      const members = rooms.get(room);
      members.delete(ws);
      if (members.size === 0) rooms.delete(room);
    }
  });
});
console.log(`node ws rival on ws://127.0.0.1:${port}/`);
