import { type Random, randomInt } from '../util/random.js'

export interface Peer {
  readonly name: string
  address: string
}

/**
 * Who this node can gossip with. In this version membership is simple: seed
 * addresses, plus every node heard from directly or named in a member hint.
 * Failure detection (SWIM) will own this part; the engine only asks it for
 * peers, so it can be replaced without touching reconciliation.
 *
 * Invariant: `list` and `byName` hold the same peers; this node is never in them.
 */
export class Membership {
  private readonly byName = new Map<string, Peer>()
  private readonly list: Peer[] = []

  constructor(
    private readonly selfName: string,
    private readonly seeds: readonly string[],
    private readonly selfAddress: string,
  ) {}

  get size(): number {
    return this.list.length
  }

  /** Records a peer (or its new address). Returns true when it was unknown. */
  observe(name: string, address: string): boolean {
    if (name === this.selfName) return false
    const known = this.byName.get(name)
    if (known !== undefined) {
      known.address = address
      return false
    }
    const peer = { name, address }
    this.byName.set(name, peer)
    this.list.push(peer)
    return true
  }

  get(name: string): Peer | undefined {
    return this.byName.get(name)
  }

  peers(): readonly Peer[] {
    return this.list
  }

  /**
   * Up to `k` distinct random peer addresses, excluding `exclude`. With no
   * known peer, the seeds (other than our own address) stand in.
   */
  pickAddresses(k: number, random: Random, exclude?: string): string[] {
    const list = this.list
    const out: string[] = []
    if (list.length === 0) {
      const seeds = this.seeds.filter((s) => s !== this.selfAddress)
      for (const s of sample(seeds, k, random)) out.push(s)
      return out
    }
    const candidates = list.length - (exclude !== undefined && this.byName.has(exclude) ? 1 : 0)
    if (candidates <= 0) return out
    if (k >= candidates) {
      for (const p of list) if (p.name !== exclude) out.push(p.address)
      return shuffle(out, random)
    }
    // Rejection sampling: k is small against the list, so this is O(k) expected.
    const chosen = new Set<number>()
    while (out.length < k) {
      const i = randomInt(random, list.length)
      if (chosen.has(i)) continue
      chosen.add(i)
      const p = list[i]!
      if (p.name === exclude) continue
      out.push(p.address)
    }
    return out
  }

  /** One random known peer, as a hint for others to learn of it. */
  randomHint(random: Random): Peer | undefined {
    if (this.list.length === 0) return undefined
    return this.list[randomInt(random, this.list.length)]
  }
}

function sample<T>(items: readonly T[], k: number, random: Random): T[] {
  return shuffle([...items], random).slice(0, k)
}

function shuffle<T>(items: T[], random: Random): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = randomInt(random, i + 1)
    const t = items[i]!
    items[i] = items[j]!
    items[j] = t
  }
  return items
}
