import { setTimeout as sleep } from 'node:timers/promises'

/**
 * Polls `predicate` (which may be async, e.g. an HTTP request) every `pollMs`
 * until it holds or `timeoutMs` passes; resolves to whether it held.
 */
export async function waitFor(predicate: () => boolean | Promise<boolean>, timeoutMs: number, pollMs = 25): Promise<boolean> {
  const deadline = performance.now() + timeoutMs
  while (performance.now() < deadline) {
    if (await predicate()) return true
    await sleep(pollMs)
  }
  return predicate()
}
