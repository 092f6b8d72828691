/**
 * A binary min-heap ordered by a numeric priority, ties broken by insertion
 * order so that equal priorities pop first-in first-out (the simulator relies
 * on this for deterministic replay).
 */
export class MinHeap<T> {
  private readonly items: { priority: number; seq: number; value: T }[] = []
  private seq = 0

  get size(): number {
    return this.items.length
  }

  push(priority: number, value: T): void {
    const items = this.items
    const node = { priority, seq: this.seq++, value }
    let i = items.length
    items.push(node)
    while (i > 0) {
      const parent = (i - 1) >> 1
      const p = items[parent]!
      if (p.priority < priority || (p.priority === priority && p.seq < node.seq)) break
      items[i] = p
      i = parent
    }
    items[i] = node
  }

  peekPriority(): number | undefined {
    return this.items[0]?.priority
  }

  peek(): T | undefined {
    return this.items[0]?.value
  }

  pop(): T | undefined {
    const items = this.items
    const top = items[0]
    if (top === undefined) return undefined
    const last = items.pop()!
    if (items.length > 0) {
      let i = 0
      const n = items.length
      for (;;) {
        const l = 2 * i + 1
        if (l >= n) break
        const r = l + 1
        let c = l
        const lc = items[l]!
        if (r < n) {
          const rc = items[r]!
          if (rc.priority < lc.priority || (rc.priority === lc.priority && rc.seq < lc.seq)) c = r
        }
        const child = items[c]!
        if (last.priority < child.priority || (last.priority === child.priority && last.seq < child.seq)) break
        items[i] = child
        i = c
      }
      items[i] = last
    }
    return top.value
  }
}
