/**
 * Splits a Server-Sent Events stream into the data of its events, as chunks
 * arrive: events end at a blank line, and an event's `data:` lines join with
 * newlines (other fields and comment lines are skipped). Used by the CLI's
 * `watch` and the chaos harness, which read an agent's `/v1/watch`.
 */
export class SseReader {
  private buffered = ''

  /** Feeds a chunk; returns the data of every event it completed, in order. */
  push(chunk: string): string[] {
    this.buffered += chunk
    const out: string[] = []
    for (let end = this.buffered.indexOf('\n\n'); end >= 0; end = this.buffered.indexOf('\n\n')) {
      const block = this.buffered.slice(0, end)
      this.buffered = this.buffered.slice(end + 2)
      const data = block
        .split('\n')
        .filter((l) => l.startsWith('data:'))
        .map((l) => (l.startsWith('data: ') ? l.slice(6) : l.slice(5)))
        .join('\n')
      if (data !== '') out.push(data)
    }
    return out
  }
}
