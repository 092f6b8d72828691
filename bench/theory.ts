/**
 * What textbook random push-pull gossip predicts, to set beside the engine.
 *
 * The protocol (Demers et al. 1987; Karp, Schindelhauer, Shenker, Vöcking,
 * "Randomized Rumor Spreading", FOCS 2000): in every round every node contacts
 * `f` others chosen uniformly at random, and the rumor crosses each contact in
 * both directions (an informed caller pushes it, an uninformed caller pulls
 * it). Karp et al. show that with f = 1 every node is informed after
 * log3(n) + O(log log n) rounds with high probability.
 *
 * For fanout f the same argument gives:
 * - start phase: while few nodes know, each informed node pushes to f peers and
 *   is pulled from by about f callers, so the informed set grows by a factor of
 *   about 1 + 2f per round: log_{2f+1}(n) rounds;
 * - end phase: an uninformed node stays so only if its f calls all reach
 *   uninformed nodes (u^f) and nobody pushes to it (about e^{-f(1-u)}), so the
 *   uninformed share falls as u -> u^{f+1} e^{-f}: doubly exponentially, in about
 *   log_{f+1}(ln n) rounds.
 * So T(n, f) ~ log_{2f+1}(n) + log_{f+1}(ln n) + O(1); f = 1 gives Karp's
 * log3(n) + O(log log n).
 *
 * Three ways to evaluate it are provided:
 * 1. `meanFieldRounds`: iterate the expected number of uninformed nodes exactly
 *    (finite n, f distinct contacts) and read P(all informed) ~ exp(-E[U_t]);
 * 2. `syncPushPull`: Monte Carlo of the synchronous protocol (the textbook
 *    model: everybody acts on the state at the start of the round);
 * 3. `asyncPushPull`: the same protocol with asynchronous rounds as the engine
 *    runs them: every node calls at its own random phase within each interval,
 *    with zero latency, so a rumor can be relayed more than once within one
 *    interval. Measured, like the engine, from a write at a random instant.
 */
import { meanFieldNextUninformed } from '../src/sim/theory-curve.js'
import { SeededRandom } from '../src/util/random.js'
import type { TheoryResult, TheoryTask } from './common.js'

export function runTheory(task: TheoryTask): TheoryResult {
  const mf = meanFieldRounds(task.n, task.fanout)
  return {
    kind: 'theory',
    n: task.n,
    fanout: task.fanout,
    sync: task.seeds.map((s) => syncPushPull(task.n, task.fanout, s)),
    async: task.seeds.map((s) => asyncPushPull(task.n, task.fanout, s)),
    meanFieldP50: mf.p50,
    meanFieldP99: mf.p99,
    formula: leadingTerms(task.n, task.fanout),
  }
}

/**
 * Share of nodes that push alone reaches when every node forwards a fresh
 * write once, to f random peers (infect-and-die rumor spreading, hop limit not
 * binding): the uninformed share s solves s = exp(-f (1 - s)) for large n.
 */
export function pushOnceCoverage(f: number): number {
  let s = 0.5
  for (let i = 0; i < 200; i++) s = Math.exp(-f * (1 - s))
  return 1 - s
}

/** log_{2f+1}(n) + log_{f+1}(ln n). */
export function leadingTerms(n: number, f: number): number {
  return Math.log(n) / Math.log(2 * f + 1) + Math.log(Math.log(n)) / Math.log(f + 1)
}

/**
 * Synchronous rounds of the expected number of uninformed nodes U:
 *   E[U'] = U * P(f calls all reach uninformed) * P(no informed node calls us)
 *         = U * prod_{k<f} (U-1-k)/(n-1-k) * (1 - f/(n-1))^(n-U).
 * With P(all informed after t rounds) ~ exp(-E[U_t]) (Poisson tail), p50 is the
 * first t with E[U_t] <= ln 2 and p99 the first with E[U_t] <= -ln 0.99.
 */
export function meanFieldRounds(n: number, f: number): { p50: number; p99: number } {
  let u = n - 1
  let p50 = NaN
  for (let t = 1; t <= 1000; t++) {
    u = meanFieldNextUninformed(u, n, f)
    if (Number.isNaN(p50) && u <= Math.LN2) p50 = t
    if (u <= -Math.log(0.99)) return { p50, p99: t }
  }
  return { p50, p99: NaN }
}

/** f distinct uniform peers of `self` among n nodes, into `out`. */
function pickPeers(random: SeededRandom, n: number, self: number, f: number, out: Int32Array): number {
  const k = Math.min(f, n - 1)
  let m = 0
  while (m < k) {
    const j = Math.floor(random.next() * n)
    if (j === self) continue
    let dup = false
    for (let q = 0; q < m; q++) if (out[q] === j) dup = true
    if (!dup) out[m++] = j
  }
  return k
}

/** Rounds of synchronous push-pull until all n nodes are informed (write just before round 1). */
export function syncPushPull(n: number, f: number, seed: number): number {
  const random = new SeededRandom(seed)
  let cur = new Uint8Array(n)
  let next = new Uint8Array(n)
  cur[Math.floor(random.next() * n)] = 1
  let informed = 1
  const peers = new Int32Array(f)
  let rounds = 0
  while (informed < n) {
    rounds++
    next.set(cur)
    for (let i = 0; i < n; i++) {
      const k = pickPeers(random, n, i, f, peers)
      for (let q = 0; q < k; q++) {
        const j = peers[q]!
        if (cur[i] === 1) next[j] = 1
        if (cur[j] === 1) next[i] = 1
      }
    }
    const t = cur
    cur = next
    next = t
    informed = 0
    for (let i = 0; i < n; i++) informed += cur[i]!
    if (rounds > 10_000) break
  }
  return rounds
}

/**
 * Asynchronous push-pull: node i calls f random peers at times k + phase_i
 * (k = 0, 1, ...); a write at a random instant in [0, 1) on a random node.
 * Each call is an instant exchange on the state just before it. Returns the
 * rounds (time units) from the write until the last node was informed.
 */
export function asyncPushPull(n: number, f: number, seed: number): number {
  const random = new SeededRandom(seed + 0x9e3779b9)
  const phase = new Float64Array(n)
  for (let i = 0; i < n; i++) phase[i] = random.next()
  const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => phase[a]! - phase[b]!)
  const informed = new Uint8Array(n)
  const writeAt = random.next()
  informed[Math.floor(random.next() * n)] = 1
  let count = 1
  let lastAt = writeAt
  const peers = new Int32Array(f)
  for (let k = 0; count < n && k < 10_000; k++) {
    for (const i of order) {
      const t = k + phase[i]!
      if (t < writeAt) continue
      const m = pickPeers(random, n, i, f, peers)
      const iKnew = informed[i] === 1
      let pulled = false
      for (let q = 0; q < m; q++) {
        const j = peers[q]!
        if (informed[j] === 1) pulled = true
        else if (iKnew) {
          informed[j] = 1
          count++
          lastAt = t
        }
      }
      if (pulled && !iKnew) {
        informed[i] = 1
        count++
        lastAt = t
      }
      if (count === n) break
    }
  }
  return lastAt - writeAt
}
