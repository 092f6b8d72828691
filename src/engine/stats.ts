import type { DropReason } from '../errors.js'

/** Counters of one engine; plain numbers so the simulator can sum thousands cheaply. */
export class EngineStats {
  messagesOut = 0
  bytesOut = 0
  streamsOut = 0
  streamBytesOut = 0
  messagesIn = 0
  bytesIn = 0
  streamsIn = 0
  streamBytesIn = 0
  /** Messages sent per type code. */
  readonly sentByType = new Map<number, number>()
  /** Bytes sent per type code (datagrams and streams). */
  readonly bytesByType = new Map<number, number>()
  /** Messages received per type code (decoded ones; drops are counted by reason instead). */
  readonly receivedByType = new Map<number, number>()
  /** Bytes received per type code (datagrams and streams). */
  readonly bytesInByType = new Map<number, number>()
  /** Messages (or entries) dropped, by reason. */
  readonly drops = new Map<DropReason, number>()
  /** Entries that changed our state. */
  entriesApplied = 0
  /** Anti-entropy exchanges opened (probes sent). */
  probesSent = 0
  /** Probes answered with a digest (fingerprints differed). */
  reconciliations = 0
  resetsSent = 0
  resetsReceived = 0
  pushesSent = 0
  /** A reset we could not send because the full state exceeded the stream limit. */
  resetsTooLarge = 0

  drop(reason: DropReason, n = 1): void {
    this.drops.set(reason, (this.drops.get(reason) ?? 0) + n)
  }

  received(type: number, bytes: number): void {
    this.receivedByType.set(type, (this.receivedByType.get(type) ?? 0) + 1)
    this.bytesInByType.set(type, (this.bytesInByType.get(type) ?? 0) + bytes)
  }

  dropped(reason: DropReason): number {
    return this.drops.get(reason) ?? 0
  }

  sent(type: number, bytes: number, stream: boolean): void {
    this.sentByType.set(type, (this.sentByType.get(type) ?? 0) + 1)
    this.bytesByType.set(type, (this.bytesByType.get(type) ?? 0) + bytes)
    if (stream) {
      this.streamsOut++
      this.streamBytesOut += bytes
    } else {
      this.messagesOut++
      this.bytesOut += bytes
    }
  }
}
