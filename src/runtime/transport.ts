/**
 * What a driver needs from a network: datagrams (best effort, at most
 * `maxPacketBytes`) and one-message reliable streams (larger transfers).
 *
 * Two implementations run the same engine: `UdpTransport` (node:dgram and
 * node:net) and its in-memory twin `SimTransport` (the simulator's network,
 * virtual time). Both deliver to `TransportHandlers`; neither ever throws
 * out of `send`: a failure is reported to `onError` (or, in the simulator,
 * is the network's decision) and the gossip goes on.
 */
export interface Transport {
  /** Sends one datagram to a transport address ("host:port", or a simulator address). */
  send(to: string, bytes: Buffer): void
  /** Sends one message over a reliable stream (TCP); used for what exceeds a datagram. */
  sendStream(to: string, bytes: Buffer): void
  close(): Promise<void>
}

export interface TransportHandlers {
  /** A datagram or a complete stream message arrived. `from` is the sender's transport address. */
  onMessage(from: string, bytes: Buffer, stream: boolean): void
  /** A transient error: counted and logged by the caller, never fatal to the gossip loop. */
  onError(err: Error, context: string): void
}

/** One message an engine queued (see `GossipEngine.takeOutbox`). */
export interface OutgoingMessage {
  readonly to: string
  readonly bytes: Buffer
  readonly stream: boolean
}

/**
 * Hands an engine's queued messages to a transport, through `wrap` (packet
 * encryption) when given. The one send path of both drivers.
 */
export function sendAll(messages: readonly OutgoingMessage[], transport: Transport, wrap?: (bytes: Buffer) => Buffer): void {
  for (const out of messages) {
    const bytes = wrap === undefined ? out.bytes : wrap(out.bytes)
    if (out.stream) transport.sendStream(out.to, bytes)
    else transport.send(out.to, bytes)
  }
}
