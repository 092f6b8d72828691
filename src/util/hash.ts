/**
 * A fast 64-bit non-cryptographic hash for set fingerprints (state hashes).
 * It is computed as two independent 32-bit lanes (murmur3-style mixing) so it
 * stays in 32-bit integer arithmetic, which JavaScript engines run fast.
 *
 * Fingerprints of sets are the XOR of their members' hashes, so they can be
 * updated in O(1) when one member changes. This is not a defence against an
 * adversary choosing keys; it detects divergence between honest replicas.
 */
export class Hash64 {
  h1 = 0x9747b28c
  h2 = 0x1b873593

  private mix(k: number): void {
    let a = Math.imul(k, 0xcc9e2d51)
    a = (a << 15) | (a >>> 17)
    a = Math.imul(a, 0x1b873593)
    let h = this.h1 ^ a
    h = (h << 13) | (h >>> 19)
    this.h1 = (Math.imul(h, 5) + 0xe6546b64) | 0
    let b = Math.imul(k ^ 0x5bd1e995, 0x85ebca6b)
    b = (b << 17) | (b >>> 15)
    b = Math.imul(b, 0xc2b2ae35)
    let g = this.h2 ^ b
    g = (g << 11) | (g >>> 21)
    this.h2 = (Math.imul(g, 9) + 0x38495ab5) | 0
  }

  /** Mixes the UTF-16 code units of a string, two per round. */
  string(s: string): this {
    const n = s.length
    let i = 0
    for (; i + 1 < n; i += 2) this.mix(s.charCodeAt(i) | (s.charCodeAt(i + 1) << 16))
    if (i < n) this.mix(s.charCodeAt(i))
    this.mix(n ^ 0x5a5a5a5a)
    return this
  }

  bytes(b: Uint8Array): this {
    const n = b.length
    let i = 0
    for (; i + 4 <= n; i += 4) this.mix(b[i]! | (b[i + 1]! << 8) | (b[i + 2]! << 16) | (b[i + 3]! << 24))
    let tail = 0
    for (let s = 0; i < n; i++, s += 8) tail |= b[i]! << s
    this.mix(tail)
    this.mix(n ^ 0x3c3c3c3c)
    return this
  }

  /** Mixes one 32-bit integer (one round). */
  int32(x: number): this {
    this.mix(x | 0)
    return this
  }

  /** Mixes a non-negative safe integer (up to 2^53). */
  number(x: number): this {
    this.mix(x >>> 0)
    this.mix(Math.floor(x / 4294967296) >>> 0)
    return this
  }

  /** Starts over, so one instance can hash many items without allocating. */
  reset(): this {
    this.h1 = 0x9747b28c
    this.h2 = 0x1b873593
    return this
  }

  /** First finalised lane (fmix32 avalanche), an unsigned 32-bit integer. */
  hi(): number {
    return fmix32(this.h1 ^ this.h2)
  }

  /** Second finalised lane. */
  lo(): number {
    return fmix32(this.h2 + Math.imul(this.h1, 3))
  }

  digest(): [number, number] {
    return [this.hi(), this.lo()]
  }
}

function fmix32(h: number): number {
  h ^= h >>> 16
  h = Math.imul(h, 0x85ebca6b)
  h ^= h >>> 13
  h = Math.imul(h, 0xc2b2ae35)
  h ^= h >>> 16
  return h >>> 0
}

/** A 64-bit XOR set fingerprint: add and remove members in O(1). */
export class SetFingerprint {
  hi = 0
  lo = 0

  toggle(hi: number, lo: number): void {
    this.hi = (this.hi ^ hi) >>> 0
    this.lo = (this.lo ^ lo) >>> 0
  }

  equals(hi: number, lo: number): boolean {
    return this.hi === hi && this.lo === lo
  }

  toHex(): string {
    return this.hi.toString(16).padStart(8, '0') + this.lo.toString(16).padStart(8, '0')
  }
}
