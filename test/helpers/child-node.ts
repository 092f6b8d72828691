/**
 * A grapevine node in its own process, for tests that kill processes:
 * `node child-node.js NAME SEED_ADDRESS [PRESET]`. Prints one JSON line
 * `{"address": ...}` once started, then runs until killed.
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
