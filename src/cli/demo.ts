import { Grapevine } from '../node.js'
import { waitFor } from '../util/wait.js'

/**
 * The seed scenario on five real nodes over loopback UDP, in one process:
 * shared initial state, one update spreading round by round (anti-entropy
 * alone, so each hop is visible), then a delete spreading as a tombstone that
 * is collected after a short retention.
 */
export interface DemoOptions {
  readonly nodes: number
  readonly gossipIntervalMs: number
  readonly fanout: number
  readonly tombstoneRetentionMs: number
  readonly log: (line: string) => void
}

export const DEMO_DEFAULTS: DemoOptions = {
  nodes: 5,
  gossipIntervalMs: 1000,
  fanout: 1,
  tombstoneRetentionMs: 4000,
  log: (line) => console.log(line),
}

function fmt(v: unknown): string {
  return v === undefined ? '(none)' : JSON.stringify(v)
}

/** Runs the demo; resolves to true when every stage converged. */
export async function runDemo(partial: Partial<DemoOptions> = {}): Promise<boolean> {
  const o = { ...DEMO_DEFAULTS, ...partial }
  const log = o.log
  const nodes: Grapevine[] = []
  const common = {
    bind: '127.0.0.1:0',
    gossipIntervalMs: o.gossipIntervalMs,
    fanout: o.fanout,
    eagerPush: false,
    tombstoneRetentionMs: o.tombstoneRetentionMs,
  }
  try {
    for (let i = 1; i <= o.nodes; i++) {
      const seeds = nodes.length > 0 ? [nodes[0]!.address] : []
      nodes.push(await Grapevine.start({ ...common, name: `node${i}`, seeds }))
    }
    log(`started ${o.nodes} nodes on loopback UDP: ${nodes.map((n) => `${n.name}@${n.address}`).join(', ')}`)
    log(`gossip every ${o.gossipIntervalMs} ms to ${o.fanout} random peers, anti-entropy only (eager push off)`)
    const first = nodes[0]!
    const sameHash = (): boolean => nodes.every((n) => n.stateHash === first.stateHash)
    const table = (): void => {
      for (const n of nodes) {
        log(
          `  ${n.name.padEnd(6)} service_version=${fmt(n.get('service_version')?.value).padEnd(10)} ` +
            `config_hash=${fmt(n.get('config_hash')?.value).padEnd(12)} stateHash=${n.stateHash}`,
        )
      }
    }

    // Stage 1: the initial state everywhere.
    first.set('service_version', 'v1.2.0')
    first.set('config_hash', 'abcdef123')
    const allHaveInitial = (): boolean => nodes.every((n) => n.get('config_hash') !== undefined && n.get('service_version') !== undefined)
    const allKnown = (): boolean => nodes.every((n) => n.members().filter((m) => m.status === 'alive').length === nodes.length)
    if (!(await waitFor(() => allHaveInitial() && sameHash() && allKnown(), 20 * o.gossipIntervalMs))) {
      log('FAILED: the initial state did not reach every node, or nodes did not discover each other')
      return false
    }
    log(`\nevery node knows the other ${nodes.length - 1} (learned through gossip from the one seed); initial state, identical on every node:`)
    table()

    // Stage 2: one update, round by round.
    log(`\n${first.name} writes service_version = "v1.3.0"`)
    const t0 = Date.now()
    let informed = 1
    const round = (): number => Math.max(1, Math.ceil((Date.now() - t0) / o.gossipIntervalMs))
    const listeners: (() => void)[] = []
    for (const n of nodes) {
      const onChange = (e: { key: string; value: unknown; from?: string }): void => {
        if (e.key !== 'service_version' || e.value !== 'v1.3.0' || e.from === undefined) return
        informed++
        log(`  round ${round()} (+${Date.now() - t0} ms): ${n.name} learned it from ${e.from}  [${informed}/${nodes.length}]`)
      }
      n.on('change', onChange)
      listeners.push(() => n.off('change', onChange))
    }
    first.set('service_version', 'v1.3.0')
    const spread = await waitFor(() => nodes.every((n) => n.get('service_version')?.value === 'v1.3.0'), 15 * o.gossipIntervalMs)
    for (const off of listeners) off()
    if (!spread || !(await waitFor(sameHash, 5 * o.gossipIntervalMs))) {
      log('FAILED: the update did not reach every node')
      return false
    }
    log(`all ${nodes.length} nodes have v1.3.0 after ${Date.now() - t0} ms (${round()} rounds):`)
    table()

    // Stage 3: a delete spreads as a tombstone, then the tombstone is collected.
    const deleter = nodes[1 % nodes.length]!
    log(`\n${deleter.name} deletes config_hash (a tombstone that spreads like a write)`)
    const t1 = Date.now()
    deleter.delete('config_hash')
    const deleted = await waitFor(() => nodes.every((n) => n.get('config_hash') === undefined), 15 * o.gossipIntervalMs)
    if (!deleted || !(await waitFor(sameHash, 5 * o.gossipIntervalMs))) {
      log('FAILED: the delete did not reach every node')
      return false
    }
    log(`every node dropped config_hash after ${Date.now() - t1} ms; tombstones held: ${nodes.map((n) => `${n.name}=${n.storeCounts.tombstones}`).join(' ')}`)
    const collected = await waitFor(
      () => nodes.every((n) => n.storeCounts.tombstones === 0),
      o.tombstoneRetentionMs + 10 * o.gossipIntervalMs,
    )
    if (!collected) {
      log('FAILED: tombstones were not collected after the retention')
      return false
    }
    log(`tombstones collected after the ${o.tombstoneRetentionMs} ms retention (+${Date.now() - t1} ms); final state:`)
    table()
    const ok = sameHash()
    log(ok ? '\nconverged: every node holds the same state' : '\nFAILED: nodes disagree at the end')
    return ok
  } finally {
    await Promise.all(nodes.map((n) => n.stop()))
  }
}
