// Rival across instances: socket.io 4 with its Redis adapter (@socket.io/redis-adapter), the
// setup socket.io's docs give for several servers. Run one process per instance, all on one
// redis-server:
//
//   node server.js PORT REDIS_URL
//
// Events (what roomcast-load --protocol socketio emits):
//   "join" {rooms}                 -> the socket joins them, then "joined" {rooms}
//   "publish" {room, event, data}  -> socket.to(room).emit(event, {room, data}): every member on
//                                     every instance but the sender, as roomcast's publish does
// WebSocket transport only (the clients connect with transport=websocket), no per-message deflate.
const { createServer } = require("node:http");
const { Server } = require("socket.io");
const { createAdapter } = require("@socket.io/redis-adapter");
const { createClient } = require("redis");

const port = Number(process.argv[2] || 8082);
const redisUrl = process.argv[3] || "redis://127.0.0.1:6379";

async function main() {
  const pubClient = createClient({ url: redisUrl });
  const subClient = pubClient.duplicate();
  await Promise.all([pubClient.connect(), subClient.connect()]);

  const httpServer = createServer();
  const io = new Server(httpServer, {
    transports: ["websocket"],
    perMessageDeflate: false,
    adapter: createAdapter(pubClient, subClient),
  });
  io.on("connection", (socket) => {
    socket.on("join", (d) => {
      socket.join(d.rooms);
      socket.emit("joined", { rooms: [...socket.rooms].filter((r) => r !== socket.id) });
    });
    socket.on("publish", (d) => {
      socket.to(d.room).emit(d.event, { room: d.room, data: d.data });
    });
  });
  httpServer.listen(port, "127.0.0.1", () => {
    console.log(`socket.io rival on ws://127.0.0.1:${port}/socket.io/ (redis ${redisUrl})`);
  });
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
