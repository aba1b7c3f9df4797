import type { Socket } from "node:net";

// Closing a connection whose client is still sending makes the kernel answer
// with a reset, and a client that is still writing then often loses the
// answer it was sent just before (its write fails first). So a connection
// refused mid-request is closed the way nginx does it ("lingering close"):
// send the answer and a FIN, read and drop whatever still comes (nothing is
// kept: no memory is held), and close when the client does, or after a short
// bound at the latest.

export const LINGER_MS = 2000;

/** Ends the connection after what was written: FIN now, input dropped, closed within LINGER_MS. */
export function lingeringClose(socket: Socket, ms = LINGER_MS): void {
  if (socket.destroyed) return;
  const timer = setTimeout(() => socket.destroy(), ms);
  timer.unref();
  socket.once("close", () => clearTimeout(timer));
  socket.once("end", () => socket.destroy());
  socket.on("error", () => socket.destroy());
  socket.end();
  socket.resume();
}

/**
 * Makes node close this request's connection with a lingering close once the
 * response (sent with `Connection: close`) is finished, instead of at once.
 */
export function lingerAfterResponse(socket: Socket | null): void {
  if (!socket) return;
  (socket as Socket & { destroySoon: () => void }).destroySoon = () => lingeringClose(socket);
}
