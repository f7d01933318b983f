// Drives the official Socket.IO client (socket.io-client from npm) for tests/test_socketio_js.py:
// commands come as JSON lines on stdin, everything a socket receives goes out as JSON lines on stdout.
import { io } from "socket.io-client";
import readline from "node:readline";

const out = (line) => process.stdout.write(JSON.stringify(line) + "\n");
const sockets = {};

readline.createInterface({ input: process.stdin }).on("line", (line) => {
  const command = JSON.parse(line);
  const { name } = command;
  if (command.op === "connect") {
    const socket = io(command.url, {
      auth: command.auth, query: command.query, extraHeaders: command.headers,
      transports: command.transports, reconnection: false, forceNew: true,
    });
    sockets[name] = socket;
    socket.on("connect", () => out({ name, event: "connect", data: socket.io.engine.transport.name }));
    socket.on("connect_error", (err) => out({ name, event: "connect_error", data: err.data ?? null }));
    socket.on("disconnect", (reason) => out({ name, event: "disconnect", data: reason }));
    socket.onAny((event, data) => out({ name, event, data: data ?? null }));
  } else if (command.op === "emit") {
    sockets[name].emit(command.event, command.data);
  } else if (command.op === "close") {
    sockets[name].close();
  } else if (command.op === "exit") {
    process.exit(0);
  }
});
