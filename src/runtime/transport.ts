import type { GossipEngine } from '../engine/engine.js'
import { type PacketSecurity, SEALED_MAGIC } from '../security/packet-security.js'

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
 * Hands an engine's queued messages to a transport, sealed by the node's
 * packet security when it has one. The one send path of both drivers.
 */
export function sendAll(messages: readonly OutgoingMessage[], transport: Transport, security: PacketSecurity | undefined): void {
  for (const out of messages) {
    if (out.stream) transport.sendStream(out.to, security === undefined ? out.bytes : security.outgoingStream(out.bytes))
    else transport.send(out.to, security === undefined ? out.bytes : security.outgoing(out.bytes))
  }
}

/** The largest datagram and stream message on the wire (sealed ones included). */
export interface WireLimits {
  readonly packetBytes: number
  readonly streamBytes: number
}

/**
 * Hands one received message to an engine: opened by the node's packet
 * security when it has one (a refused packet is a counted drop), refused as
 * undecryptable when it is sealed and the node has no keyring. The one
 * receive path of both drivers. A sealed stream message is its preamble and
 * body (the simulator delivers both), or its body alone when the real
 * transport has already read and opened the preamble (`StreamAuthenticator`).
 */
export function receiveInto(
  engine: GossipEngine,
  security: PacketSecurity | undefined,
  wire: WireLimits,
  nowMs: number,
  from: string,
  bytes: Buffer,
  stream: boolean,
): void {
  if (security !== undefined) {
    const opened = stream ? security.incomingStream(bytes, wire.streamBytes, nowMs) : security.incoming(bytes, wire.packetBytes, nowMs)
    if (opened.ok) engine.receive(nowMs, from, opened.bytes, stream)
    else engine.dropPacket(from, opened.reason, opened.detail)
  } else if (bytes.length > 0 && bytes[0] === SEALED_MAGIC) {
    engine.dropPacket(from, 'unknown-key', 'an encrypted packet, and this node has no keyring')
  } else {
    engine.receive(nowMs, from, bytes, stream)
  }
}

