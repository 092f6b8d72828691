/**
 * `npm run fuzz`: the hostile-input test of `npm test`, longer.
 *
 *   node dist/bench/fuzz.js [--inputs N] [--seed S] [--runs R] [--encrypted]
 *
 * Each run feeds N inputs (default 1,000,000) to one node of a simulated
 * cluster, then checks that the cluster converges; runs use seeds S, S+1...
 * Prints the drops by reason per run. Exits 1 on an exception (with the
 * seed and the input that threw) or when a run does not converge.
 *
 *   node dist/bench/fuzz.js --hostile [--messages N] [--seed S]
 *
 * The hostile peer (test/helpers/hostile-peer.ts) as a soak: every case once,
 * then N well-formed hostile messages (default 1,000,000) over real UDP and
 * TCP to a live two-node cluster whose nodes run in child processes. Reports
 * messages sent, drops by reason, crashes and the victims' RSS at start and
 * end; exits 1 on a crash, a failed case, or RSS grown more than 4-fold.
 */
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import { fuzzCluster } from '../test/helpers/fuzz-harness.js'

setFlagsFromString('--expose-gc')
const gc = runInNewContext('gc') as () => void

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(name)
  if (i < 0) return fallback
  const v = Number(process.argv[i + 1])
  if (!Number.isSafeInteger(v) || v < 0) throw new Error(`${name} needs a whole number`)
  return v
}

if (process.argv.includes('--hostile')) {
  const { runHostile } = await import('../test/helpers/hostile-cluster.js')
  const verbose = process.argv.includes('--verbose')
  const r = await runHostile({
    seed: arg('--seed', 1),
    messages: arg('--messages', 1_000_000),
    batch: 10_000,
    log: (line) => {
      if (verbose || line.startsWith('FAIL')) process.stdout.write(`${line}\n`)
    },
  })
  const mib = (b: number[]): string => b.map((x) => `${(x / 2 ** 20).toFixed(0)} MiB`).join(' / ')
  const drops = Object.entries(r.dropsByReason)
    .sort((a, b) => (b[1] ?? 0) - (a[1] ?? 0))
    .map(([k, v]) => `${k} ${v}`)
    .join(', ')
  // Plaintext lets anyone write, so the victims' data grows with the attacker's writes (up to its key
  // space); bounded means the memory beyond that data levels off: RSS less the bytes held stays
  // within four times the RSS at the start.
  const overhead = (m: { rss: number; valueBytes: number }): number => m.rss - m.valueBytes
  const last = r.memorySeries.at(-1)?.[1] ?? []
  const rssGrew = r.rssEndBytes.some((end) => end === 0) || last.some((m, i) => overhead(m) > 4 * (r.rssStartBytes[i] ?? m.rss))
  process.stdout.write(
    `hostile seed ${r.seed}: ${r.messagesSent} messages (${r.udpSent} UDP, ${r.tcpSent} TCP; ${r.received} counted received) in ${(r.wallMs / 1000).toFixed(1)} s; ` +
      `${r.templates} cases (${r.casesRetried} sent twice: a counter moved for other traffic); crashes ${r.crashes}; failures ${r.failures.length}; cluster restarts ${r.restarts}\n` +
      `  drops: ${drops}\n  victims' RSS: start ${mib(r.rssStartBytes)}, end ${mib(r.rssEndBytes)}\n`,
  )
  // Memory along the way, at every tenth of the volume.
  const series = r.memorySeries
  const marks = series.filter((_, i) => series.length <= 10 || i % Math.ceil(series.length / 10) === 0 || i === series.length - 1)
  process.stdout.write(
    `  memory by messages sent (RSS; keys held, their bytes):\n${marks.map(([n, ms]) => `    ${n}: ${ms.map((m) => `${mib([m.rss])}; ${m.live} keys, ${mib([m.valueBytes])}`).join(' | ')}`).join('\n')}\n`,
  )
  process.exit(r.crashes > 0 || r.failures.length > 0 || rssGrew ? 1 : 0)
}

const inputs = arg('--inputs', 1_000_000)
const seed = arg('--seed', 1)
const runs = arg('--runs', 1)
const encrypted = process.argv.includes('--encrypted')
const KEY = 'q8S4VOf4U5ir0Qd8s6r2l6X5H3mJzYb1cF6T2nKp0Ws='
let failed = false
for (let run = 0; run < runs; run++) {
  const s = seed + run
  let last: { index: number; mutator: string; bytes: Buffer } | undefined
  try {
    const r = fuzzCluster({
      seed: s,
      inputs,
      gc,
      ...(encrypted ? { encryption: { keys: [KEY] } } : {}),
      onInput: (index, mutator, bytes) => (last = { index, mutator, bytes }),
    })
    const drops = Object.entries(r.drops)
      .sort((a, b) => (b[1] ?? 0) - (a[1] ?? 0))
      .map(([k, v]) => `${k} ${v}`)
      .join(', ')
    const ok = r.convergedAfterMs !== undefined
    if (!ok) failed = true
    process.stdout.write(
      `seed ${s}: ${r.inputs} inputs in ${(r.wallMs / 1000).toFixed(1)} s; ${ok ? `converged ${r.convergedAfterMs} ms after` : 'DID NOT CONVERGE'}; ` +
        `heap +${(r.heapGrowthBytes / 2 ** 20).toFixed(1)} MiB; victim knows ${r.victimMembers} members\n  drops: ${drops}\n`,
    )
  } catch (err) {
    failed = true
    process.stdout.write(`seed ${s}: input ${last?.index} (${last?.mutator}) threw: ${(err as Error).stack}\n  input: ${last?.bytes.toString('hex')}\n`)
  }
}
process.exit(failed ? 1 : 0)
