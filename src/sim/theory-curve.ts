/**
 * The epidemic curve that theory predicts for random push-pull gossip with
 * fanout f (every round every node contacts f uniformly random others; the
 * update crosses each contact both ways): the expected number of uninformed
 * nodes U, iterated over synchronous rounds for finite n,
 *   E[U'] = U * prod_{k<f} (U-1-k)/(n-1-k) * (1 - f/(n-1))^(n-U),
 * starting from one informed node. `bench/theory.ts` reads its p50/p99 off
 * the same recursion.
 */
export function meanFieldInformed(n: number, f: number, rounds: number): number[] {
  const out = [1 / n]
  let u = n - 1
  for (let t = 1; t <= rounds; t++) {
    let pullFails = 1
    for (let k = 0; k < f; k++) pullFails *= Math.max(0, u - 1 - k) / (n - 1 - k)
    const pushMisses = Math.pow(1 - Math.min(1, f / (n - 1)), n - u)
    u = u * pullFails * pushMisses
    out.push(1 - u / n)
  }
  return out
}
