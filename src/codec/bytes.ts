import { DecodeError } from '../errors.js'

/**
 * Bounded binary reader. Every read checks the remaining length first and
 * every variable-length field is checked against a caller-given limit before
 * any allocation, so hostile input can only make it throw `DecodeError`.
 */
export class Reader {
  private pos = 0
  /**
   * @param itemsLeft items (entries, rows, members...) the whole message may
   *   still hold: every `count` takes from it, so a limit on items bounds the
   *   message, not each list in it.
   */
  constructor(
    private readonly buf: Buffer,
    private itemsLeft = Number.MAX_SAFE_INTEGER,
  ) {}

  get remaining(): number {
    return this.buf.length - this.pos
  }

  get offset(): number {
    return this.pos
  }

  private need(n: number): void {
    if (n > this.buf.length - this.pos) throw new DecodeError('truncated', 'message ends early')
  }

  u8(): number {
    this.need(1)
    return this.buf[this.pos++]!
  }

  u32(): number {
    this.need(4)
    const v = this.buf.readUInt32BE(this.pos)
    this.pos += 4
    return v
  }

  /** LEB128 unsigned integer up to 2^53 - 1. */
  varint(): number {
    let result = 0
    let scale = 1
    for (let i = 0; i < 8; i++) {
      const b = this.u8()
      result += (b & 0x7f) * scale
      if ((b & 0x80) === 0) {
        if (!Number.isSafeInteger(result)) break
        return result
      }
      scale *= 128
    }
    throw new DecodeError('malformed', 'varint too long')
  }

  /** A count of items, bounded by `max` and by the bytes left (each item takes at least `minBytesEach`). */
  count(max: number, minBytesEach = 1): number {
    const n = this.varint()
    if (n > max) throw new DecodeError('limit-exceeded', `count ${n} exceeds limit ${max}`)
    if (n > this.itemsLeft) throw new DecodeError('limit-exceeded', 'more items than one message may hold')
    if (n * minBytesEach > this.remaining) throw new DecodeError('truncated', 'count larger than the message')
    this.itemsLeft -= n
    return n
  }

  bytes(maxLen: number): Buffer {
    const n = this.varint()
    if (n > maxLen) throw new DecodeError('limit-exceeded', `field of ${n} bytes exceeds limit ${maxLen}`)
    this.need(n)
    const out = Buffer.from(this.buf.subarray(this.pos, this.pos + n))
    this.pos += n
    return out
  }

  string(maxLen: number): string {
    const n = this.varint()
    if (n > maxLen) throw new DecodeError('limit-exceeded', `string of ${n} bytes exceeds limit ${maxLen}`)
    this.need(n)
    const s = this.buf.toString('utf8', this.pos, this.pos + n)
    // Invalid UTF-8 decodes to U+FFFD, which re-encodes larger than it came:
    // refuse it, so a string accepted within its limit stays within it.
    if (s.includes('\ufffd') && Buffer.byteLength(s, 'utf8') !== n) throw new DecodeError('malformed', 'invalid UTF-8')
    this.pos += n
    return s
  }
}

export function varintSize(n: number): number {
  let size = 1
  while (n >= 128) {
    n = Math.floor(n / 128)
    size++
  }
  return size
}

export function stringSize(s: string): number {
  const n = Buffer.byteLength(s, 'utf8')
  return varintSize(n) + n
}

/** Growable binary writer. */
export class Writer {
  private buf: Buffer
  private pos = 0

  constructor(initial = 256) {
    this.buf = Buffer.allocUnsafe(initial)
  }

  get length(): number {
    return this.pos
  }

  private ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return
    let size = this.buf.length * 2
    while (size < this.pos + n) size *= 2
    const next = Buffer.allocUnsafe(size)
    this.buf.copy(next, 0, 0, this.pos)
    this.buf = next
  }

  u8(v: number): this {
    this.ensure(1)
    this.buf[this.pos++] = v
    return this
  }

  u32(v: number): this {
    this.ensure(4)
    this.buf.writeUInt32BE(v >>> 0, this.pos)
    this.pos += 4
    return this
  }

  /**
   * Writes a non-negative safe integer. Anything else would come out as bytes
   * every reader refuses (or as another number), so it is a bug in the
   * caller, thrown here rather than sent.
   */
  varint(v: number): this {
    if (!Number.isSafeInteger(v) || v < 0) throw new RangeError(`varint out of range: ${v}`)
    this.ensure(8)
    while (v >= 128) {
      this.buf[this.pos++] = (v % 128) | 0x80
      v = Math.floor(v / 128)
    }
    this.buf[this.pos++] = v
    return this
  }

  bytes(b: Uint8Array): this {
    this.varint(b.length)
    this.ensure(b.length)
    this.buf.set(b, this.pos)
    this.pos += b.length
    return this
  }

  string(s: string): this {
    const n = Buffer.byteLength(s, 'utf8')
    this.varint(n)
    this.ensure(n)
    this.buf.write(s, this.pos, n, 'utf8')
    this.pos += n
    return this
  }

  finish(): Buffer {
    return this.buf.subarray(0, this.pos)
  }
}
