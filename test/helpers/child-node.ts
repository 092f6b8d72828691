/**
 * A grapevine node in its own process, for tests that kill processes:
 * `node child-node.js NAME SEED_ADDRESS [PRESET]`. Prints one JSON line
 * `{"address": ...}` once started, then runs until killed.
 *
 * Optional, through the environment: GV_CHILD_SET="key=value" writes that key
 * once started; GV_CHILD_REPORT_MS=N prints a JSON line every N ms with the
 * node's state hash, key count and each member's status.
 */
import { Grapevine } from '../../src/index.js'

const [name, seed, preset] = process.argv.slice(2)
const node = await Grapevine.start({
  name: name!,
  bind: '127.0.0.1:0',
  seeds: seed !== undefined && seed !== '' ? [seed] : [],
  preset: (preset ?? 'lan') as 'lan',
})
process.stdout.write(`${JSON.stringify({ address: node.address })}\n`)
const set = process.env.GV_CHILD_SET
if (set !== undefined && set.includes('=')) node.set(set.slice(0, set.indexOf('=')), set.slice(set.indexOf('=') + 1))
const reportMs = Number(process.env.GV_CHILD_REPORT_MS ?? 0)
if (reportMs > 0) {
  setInterval(() => {
    const members = Object.fromEntries(node.members().map((m) => [m.name, m.status]))
    process.stdout.write(`${JSON.stringify({ stateHash: node.stateHash, keys: node.entries().length, members })}\n`)
  }, reportMs)
}
