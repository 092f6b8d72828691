/**
 * What theory predicts for random push-pull gossip with fanout f (every
 * round every node contacts f uniformly random others; the update crosses
 * each contact both ways): the expected number of uninformed nodes U,
 * iterated over synchronous rounds for finite n,
 *   E[U'] = U * prod_{k<f} (U-1-k)/(n-1-k) * (1 - f/(n-1))^(n-U),
 * starting from one informed node. `grapevine sim` plots the curve;
 * `bench/theory.ts` reads its p50/p99 rounds off the same recursion.
 */
export function meanFieldNextUninformed(u: number, n: number, f: number): number {
  let pullFails = 1
  for (let k = 0; k < f; k++) pullFails *= Math.max(0, u - 1 - k) / (n - 1 - k)
  const pushMisses = Math.pow(1 - Math.min(1, f / (n - 1)), n - u)
  return u * pullFails * pushMisses
}

/** The expected share of informed nodes after 0, 1, ... `rounds` rounds. */
export function meanFieldInformed(n: number, f: number, rounds: number): number[] {
  const out = [1 / n]
  let u = n - 1
  for (let t = 1; t <= rounds; t++) {
    u = meanFieldNextUninformed(u, n, f)
    out.push(1 - u / n)
  }
  return out
}
