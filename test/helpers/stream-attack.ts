/** Pieces of a hostile stream sender, shared by the transport tests. */
import type net from 'node:net'

/** A stream frame's 4-byte length header. */
export function frame(length: number): Buffer {
  const h = Buffer.alloc(4)
  h.writeUInt32BE(length, 0)
  return h
}

/**
 * Writes all but the last byte of a `declared`-byte body in `chunk`-sized
 * pieces, honouring backpressure; stops early if the receiver closes. The
 * caller sends the last byte (or not) when it chooses.
 */
export async function sendAllButLast(s: net.Socket, declared: number, chunk: Buffer): Promise<void> {
  for (let at = 0; at < declared - 1 && !s.destroyed; at += chunk.length) {
    if (!s.write(chunk.subarray(0, Math.min(chunk.length, declared - 1 - at)))) {
      await new Promise<void>((resolve) => {
        s.once('drain', resolve)
        s.once('close', resolve)
      })
    }
  }
}
