/**
 * A binary min-heap ordered by a numeric priority, ties broken by insertion
 * order so that equal priorities pop first-in first-out (the simulator relies
 * on this for deterministic replay).
 *
 * Priorities and insertion numbers live in typed arrays beside the values
 * (struct of arrays): a push allocates nothing but the occasional doubling,
 * and a sift compares numbers in contiguous memory, not fields of scattered
 * objects. The simulator's event queue holds tens of thousands of entries
 * and turns over millions per run; this is its hot loop.
 */
export class MinHeap<T> {
  private priorities = new Float64Array(0)
  private seqs = new Float64Array(0)
  private values: (T | undefined)[] = []
  private count = 0
  private seq = 0

  get size(): number {
    return this.count
  }

  private grow(): void {
    const cap = Math.max(16, this.priorities.length * 2)
    const p = new Float64Array(cap)
    p.set(this.priorities)
    const s = new Float64Array(cap)
    s.set(this.seqs)
    this.priorities = p
    this.seqs = s
  }

  push(priority: number, value: T): void {
    if (this.count === this.priorities.length) this.grow()
    const pr = this.priorities
    const sq = this.seqs
    const vals = this.values
    const seq = this.seq++
    let i = this.count++
    // Sift up: a parent with a later (priority, seq) moves down into the hole.
    while (i > 0) {
      const parent = (i - 1) >> 1
      const pp = pr[parent]!
      if (pp < priority || (pp === priority && sq[parent]! < seq)) break
      pr[i] = pp
      sq[i] = sq[parent]!
      vals[i] = vals[parent]
      i = parent
    }
    pr[i] = priority
    sq[i] = seq
    vals[i] = value
  }

  peekPriority(): number | undefined {
    return this.count === 0 ? undefined : this.priorities[0]
  }

  peek(): T | undefined {
    return this.count === 0 ? undefined : this.values[0]
  }

  pop(): T | undefined {
    if (this.count === 0) return undefined
    const pr = this.priorities
    const sq = this.seqs
    const vals = this.values
    const top = vals[0]
    const n = --this.count
    // The last entry goes into the root's hole and sifts down.
    const lastP = pr[n]!
    const lastS = sq[n]!
    const lastV = vals[n]
    vals[n] = undefined
    if (n > 0) {
      let i = 0
      for (;;) {
        const l = 2 * i + 1
        if (l >= n) break
        const r = l + 1
        let c = l
        if (r < n) {
          const rp = pr[r]!
          const lp = pr[l]!
          if (rp < lp || (rp === lp && sq[r]! < sq[l]!)) c = r
        }
        const cp = pr[c]!
        if (lastP < cp || (lastP === cp && lastS < sq[c]!)) break
        pr[i] = cp
        sq[i] = sq[c]!
        vals[i] = vals[c]
        i = c
      }
      pr[i] = lastP
      sq[i] = lastS
      vals[i] = lastV
    }
    return top
  }
}
