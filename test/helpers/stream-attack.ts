/** Pieces of a hostile stream sender, shared by the transport tests. */
import net from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'
import { parseHostPort } from '../../src/runtime/address.js'

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

/**
 * Keeps `count` connections from `localAddress` open against `target`: each
 * sends a length of 1 MiB, then a byte every 100 ms (0x68, the sealed magic,
 * so an encrypted node waits for a preamble that never completes). A closed
 * one is opened again after 50 ms. Stops (and closes everything) when
 * `stop` is called.
 */
export function slowloris(target: string, localAddress: string, count: number): { stop: () => Promise<void> } {
  const { host, port } = parseHostPort(target, 'target')
  let running = true
  const sockets = new Set<net.Socket>()
  const one = async (): Promise<void> => {
    while (running) {
      const s = net.connect({ host, port, localAddress })
      sockets.add(s)
      s.on('error', () => {})
      let closed = false
      s.once('close', () => (closed = true))
      s.write(frame(1 << 20))
      for (let t = 0; running && !closed && t < 600; t++) {
        s.write(Buffer.from([0x68]))
        await sleep(100)
      }
      s.destroy()
      sockets.delete(s)
      await sleep(50)
    }
  }
  const loops = Array.from({ length: count }, () => one())
  return {
    stop: async () => {
      running = false
      for (const s of sockets) s.destroy()
      await Promise.all(loops)
    },
  }
}
