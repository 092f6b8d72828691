import { type SimulationOptions, Simulation } from '../../src/sim/simulation.js'

/**
 * Runs a seeded simulation test. The seed comes from GRAPEVINE_SEED when set
 * (to replay a failure), else the given default. A failure is rethrown with
 * the seed and the command that replays it.
 */
export function simulate(
  name: string,
  defaultSeed: number,
  options: Omit<SimulationOptions, 'seed'>,
  body: (sim: Simulation) => void,
): void {
  const env = process.env.GRAPEVINE_SEED
  const seed = env !== undefined && env !== '' ? Number(env) : defaultSeed
  const sim = new Simulation({ ...options, seed })
  try {
    body(sim)
  } catch (err) {
    const e = err as Error
    e.message = `[simulation '${name}' failed with seed ${seed}; replay: GRAPEVINE_SEED=${seed} node --test --test-name-pattern='${name.replace(/[^\w ]/g, '.')}' dist/test/*.test.js]\n${e.message}`
    throw e
  }
}

/** Virtual ms until every live node holds `key` with `value` (undefined: absent), or undefined. */
export function timeUntilAll(sim: Simulation, key: string, value: string | undefined, maxMs: number, stepMs = 50): number | undefined {
  return sim.runUntilTrue(
    () => sim.liveNodes().every((n) => (n.engine.get(sim.clockOf(n), key)?.value as string | undefined) === value),
    maxMs,
    stepMs,
  )
}

/** For failure messages: the distinct states of the live nodes, with their stored entries. */
export function describeDivergence(sim: Simulation): string {
  const groups = new Map<string, string[]>()
  for (const n of sim.liveNodes()) {
    const h = n.engine.stateHash(sim.clockOf(n))
    groups.set(h, [...(groups.get(h) ?? []), n.name])
  }
  const lines: string[] = []
  for (const [h, names] of groups) {
    const n = sim.nodes.find((x) => x.name === names[0])!
    const entries = [...n.engine.state.allEntries()]
      .sort((a, b) => (a.key < b.key ? -1 : 1))
      .map((e) => `${e.key}=${e.value === undefined ? '∅' : String(e.value).slice(0, 20)}@${e.ts}/${e.origin}${e.expiresAt ? `/exp${e.expiresAt}` : ''}`)
    const wms = n.engine.state.origins().map((o) => `${o}:${n.engine.state.watermark(o)}/gc${n.engine.state.gcFloor(o)}`)
    lines.push(`hash ${h} on ${names.join(',')}:\n  entries ${entries.join(' ')}\n  watermarks ${wms.join(' ')}`)
  }
  return lines.join('\n')
}
