import { type Random, randomInt } from '../util/random.js'

export interface Peer {
  readonly name: string
  readonly address: string
}

/** A peer list that several `Membership`s may share until one of them changes it. */
export interface PeerDirectory {
  readonly list: Peer[]
  readonly byName: Map<string, Peer>
}

export function peerDirectory(peers: readonly Peer[]): PeerDirectory {
  const list = [...peers]
  return { list, byName: new Map(list.map((p) => [p.name, p])) }
}

/**
 * Who this node can gossip with. In this version membership is simple: seed
 * addresses, plus every node heard from directly or named in a member hint.
 * Failure detection (SWIM) will own this part; the engine only asks it for
 * peers, so it can be replaced without touching reconciliation.
 *
 * The directory may be shared (copy-on-write): the simulator hands ten
 * thousand nodes of a formed cluster one list instead of ten thousand
 * copies. It may therefore contain this node itself, which every query skips.
 */
export class Membership {
  private dir: PeerDirectory
  private owned: boolean
  /**
   * Peers learned recently, each with the number of hints it may still ride
   * in (memberlist's retransmit budget): news of a joiner spreads in a few
   * rounds, and the hints stop costing bytes once it has.
   */
  private recent: { peer: Peer; remaining: number }[] = []

  constructor(
    private readonly selfName: string,
    private readonly seeds: readonly string[],
    private readonly selfAddress: string,
    shared?: PeerDirectory,
  ) {
    this.dir = shared ?? { list: [], byName: new Map() }
    this.owned = shared === undefined
  }

  /** Number of peers, this node excluded. */
  get size(): number {
    return this.dir.list.length - (this.dir.byName.has(this.selfName) ? 1 : 0)
  }

  private own(): PeerDirectory {
    if (!this.owned) {
      this.dir = peerDirectory(this.dir.list)
      this.owned = true
    }
    return this.dir
  }

  /** Records a peer (or its new address). Returns true when it was unknown. */
  observe(name: string, address: string): boolean {
    if (name === this.selfName) return false
    const known = this.dir.byName.get(name)
    if (known !== undefined && known.address === address) return false
    const dir = this.own()
    const peer = { name, address }
    if (known !== undefined) {
      dir.list[dir.list.indexOf(known)] = peer
      dir.byName.set(name, peer)
      return false
    }
    dir.byName.set(name, peer)
    dir.list.push(peer)
    this.recent.push({ peer, remaining: 3 * Math.ceil(Math.log10(this.size + 1) + 1) })
    if (this.recent.length > 64) this.recent.shift()
    return true
  }

  get(name: string): Peer | undefined {
    return name === this.selfName ? undefined : this.dir.byName.get(name)
  }

  peers(): Peer[] {
    return this.dir.list.filter((p) => p.name !== this.selfName)
  }

  /**
   * Up to `k` distinct random peer addresses, excluding `exclude`. With no
   * known peer, the seeds (other than our own address) stand in.
   */
  pickAddresses(k: number, random: Random, exclude?: string): string[] {
    const list = this.dir.list
    const out: string[] = []
    let candidates = this.size
    if (exclude !== undefined && exclude !== this.selfName && this.dir.byName.has(exclude)) candidates--
    if (this.size === 0) {
      const seeds = this.seeds.filter((s) => s !== this.selfAddress)
      return shuffle(seeds, random).slice(0, k)
    }
    if (candidates <= 0) return out
    if (k >= candidates) {
      for (const p of list) if (p.name !== exclude && p.name !== this.selfName) out.push(p.address)
      return shuffle(out, random)
    }
    // Rejection sampling: k is small against the list, so this is O(k) expected
    // when k is well below the candidates, and bounded by a shuffle otherwise.
    if (k * 2 > candidates) {
      const all = list.filter((p) => p.name !== exclude && p.name !== this.selfName).map((p) => p.address)
      return shuffle(all, random).slice(0, k)
    }
    const chosen = new Set<number>()
    while (out.length < k) {
      const i = randomInt(random, list.length)
      if (chosen.has(i)) continue
      chosen.add(i)
      const p = list[i]!
      if (p.name === exclude || p.name === this.selfName) continue
      out.push(p.address)
    }
    return out
  }

  /**
   * Peers to name in an outgoing probe: up to `max - 1` recently learned
   * ones (spending their budget) and one at random, which keeps discovery
   * going at one hint per probe once nothing is new.
   */
  hints(random: Random, max: number): Peer[] {
    const out: Peer[] = []
    for (let i = 0; i < this.recent.length && out.length < max - 1; i++) {
      const r = this.recent[i]!
      out.push(r.peer)
      r.remaining--
    }
    if (this.recent.length > 0 && this.recent[0]!.remaining <= 0) this.recent = this.recent.filter((r) => r.remaining > 0)
    const list = this.dir.list
    if (this.size > 0 && out.length < max) {
      for (;;) {
        const p = list[randomInt(random, list.length)]!
        if (p.name === this.selfName) continue
        if (!out.includes(p)) out.push(p)
        break
      }
    }
    return out
  }
}

function shuffle<T>(items: T[], random: Random): T[] {
  items = [...items]
  for (let i = items.length - 1; i > 0; i--) {
    const j = randomInt(random, i + 1)
    const t = items[i]!
    items[i] = items[j]!
    items[j] = t
  }
  return items
}
