/**
 * A source of randomness injected into the engine. The engine never calls
 * `Math.random`: the simulator passes a seeded source so that a run replays
 * exactly, the real runtime passes one seeded from the OS.
 */
export interface Random {
  /** A float uniformly distributed in [0, 1). */
  next(): number
}

/**
 * sfc32 (Chris Doty-Humphrey's Small Fast Counting generator): 128 bits of
 * state, passes PractRand, and is fast in JavaScript because it only uses
 * 32-bit integer operations.
 */
export class SeededRandom implements Random {
  private a: number
  private b: number
  private c: number
  private d: number

  constructor(seed: number) {
    // Spread the seed with splitmix32 so nearby seeds give unrelated streams.
    let s = seed >>> 0
    const mix = (): number => {
      s = (s + 0x9e3779b9) | 0
      let z = s
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b)
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35)
      return (z ^ (z >>> 16)) >>> 0
    }
    this.a = mix()
    this.b = mix()
    this.c = mix()
    this.d = mix()
    for (let i = 0; i < 12; i++) this.nextUint32()
  }

  nextUint32(): number {
    const t = (((this.a + this.b) | 0) + this.d) | 0
    this.d = (this.d + 1) | 0
    this.a = this.b ^ (this.b >>> 9)
    this.b = (this.c + (this.c << 3)) | 0
    this.c = (this.c << 21) | (this.c >>> 11)
    this.c = (this.c + t) | 0
    return t >>> 0
  }

  next(): number {
    return this.nextUint32() / 4294967296
  }

  /** A child generator with its own stream, derived deterministically. */
  fork(): SeededRandom {
    return new SeededRandom(this.nextUint32())
  }
}

/** An integer uniformly distributed in [0, n). */
export function randomInt(random: Random, n: number): number {
  return Math.floor(random.next() * n)
}
