import assert from 'node:assert/strict'
import { test } from 'node:test'
import { runDemo } from '../src/cli/demo.js'

test('the demo converges on real sockets (fast settings)', async () => {
  const lines: string[] = []
  const ok = await runDemo({ gossipIntervalMs: 100, tombstoneRetentionMs: 600, log: (l) => lines.push(l) })
  assert.ok(ok, lines.join('\n'))
  const text = lines.join('\n')
  assert.match(text, /learned it from node\d/)
  assert.match(text, /tombstones collected/)
  assert.match(text, /converged: every node holds the same state/)
})
