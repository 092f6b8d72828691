import type { Transport } from '../runtime/transport.js'

/** What a `SimTransport` hands its messages to: the simulation's router. */
export type SimRoute = (fromIndex: number, to: string, bytes: Buffer, stream: boolean) => void

/**
 * The in-memory twin of `UdpTransport`: one node's endpoint on the
 * simulator's network. A send becomes a delivery event in virtual time, its
 * fate (latency, loss, duplication, partition, size limit) decided by
 * `SimNetwork` with the run's seeded randomness; deliveries reach the node
 * through the same path as on real sockets (packet security, then the
 * engine's `receive`).
 */
export class SimTransport implements Transport {
  constructor(
    private readonly index: number,
    private readonly route: SimRoute,
  ) {}

  send(to: string, bytes: Buffer): void {
    this.route(this.index, to, bytes, false)
  }

  sendStream(to: string, bytes: Buffer): void {
    this.route(this.index, to, bytes, true)
  }

  async close(): Promise<void> {
    // Nothing is held: a crashed node's messages are dropped by the simulation.
  }
}
