import type { DropReason } from '../errors.js'

/** Type codes are small (see MessageType); anything beyond is counted under 0. */
const TYPE_SLOTS = 32

function typeSlot(type: number): number {
  return type > 0 && type < TYPE_SLOTS ? type : 0
}

/**
 * One counter per message type code: a read-only view into its engine's
 * counters. Iterates like a Map of the codes seen.
 */
export class TypeCounters {
  constructor(
    private readonly counts: Float64Array,
    private readonly base: number,
  ) {}

  get(type: number): number {
    return this.counts[this.base + typeSlot(type)]!
  }

  *[Symbol.iterator](): IterableIterator<[number, number]> {
    for (let t = 0; t < TYPE_SLOTS; t++) {
      const n = this.counts[this.base + t]!
      if (n > 0) yield [t, n]
    }
  }
}

const SENT = 0
const BYTES_SENT = TYPE_SLOTS
const RECEIVED = 2 * TYPE_SLOTS
const BYTES_RECEIVED = 3 * TYPE_SLOTS

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
  /**
   * The per-type counters, all in one array: every message sent or received
   * bumps two of them, and the simulator runs this for ten thousand engines
   * whose memory is cold (one array, not four Maps, is fewer cache misses).
   */
  private readonly byType = new Float64Array(4 * TYPE_SLOTS)
  /** Messages sent per type code. */
  readonly sentByType = new TypeCounters(this.byType, SENT)
  /** Bytes sent per type code (datagrams and streams). */
  readonly bytesByType = new TypeCounters(this.byType, BYTES_SENT)
  /** Messages received per type code (decoded ones; drops are counted by reason instead). */
  readonly receivedByType = new TypeCounters(this.byType, RECEIVED)
  /** Bytes received per type code (datagrams and streams). */
  readonly bytesInByType = new TypeCounters(this.byType, BYTES_RECEIVED)
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
  /**
   * Messages of ours not sent because they exceed the datagram limit where no
   * stream may carry them (e.g. a membership record at the size limits with
   * our longer header). Outbound, so not among the drops, which count what
   * we received.
   */
  unsendable = 0

  drop(reason: DropReason, n = 1): void {
    this.drops.set(reason, (this.drops.get(reason) ?? 0) + n)
  }

  received(type: number, bytes: number): void {
    const t = typeSlot(type)
    this.byType[RECEIVED + t]!++
    this.byType[BYTES_RECEIVED + t] = this.byType[BYTES_RECEIVED + t]! + bytes
  }

  dropped(reason: DropReason): number {
    return this.drops.get(reason) ?? 0
  }

  sent(type: number, bytes: number, stream: boolean): void {
    const t = typeSlot(type)
    this.byType[SENT + t]!++
    this.byType[BYTES_SENT + t] = this.byType[BYTES_SENT + t]! + bytes
    if (stream) {
      this.streamsOut++
      this.streamBytesOut += bytes
    } else {
      this.messagesOut++
      this.bytesOut += bytes
    }
  }
}
