/**
 * Encryption on real sockets: key rotation and the move from plaintext to
 * encryption on a live cluster with writes flowing lose no write; a node
 * with the wrong key, without a key, or of another cluster learns nothing
 * and changes nothing.
 */
import assert from 'node:assert/strict'
import { setTimeout as sleep } from 'node:timers/promises'
import { after, describe, test } from 'node:test'
import { type DropReason, Grapevine, generateKey } from '../src/index.js'
import { waitFor } from '../src/util/wait.js'

const fast = { gossipIntervalMs: 100, fanout: 2, preset: 'local' as const, joinTimeoutMs: 2000 }

describe('encryption on loopback UDP', () => {
  const started: Grapevine[] = []
  after(async () => {
    await Promise.all(started.map((n) => n.stop()))
  })

  async function start(name: string, seeds: readonly string[], options: Record<string, unknown>): Promise<Grapevine> {
    const node = await Grapevine.start({ ...fast, ...options, name, bind: '127.0.0.1:0', seeds: [...seeds] })
    started.push(node)
    return node
  }

  async function cluster(prefix: string, n: number, options: Record<string, unknown>): Promise<Grapevine[]> {
    const nodes: Grapevine[] = []
    for (let i = 0; i < n; i++) nodes.push(await start(`${prefix}${i + 1}`, nodes.length > 0 ? [nodes[0]!.address] : [], options))
    assert.ok(await waitFor(() => nodes.every((x) => alive(x) === n), 10_000), `${prefix}: all ${n} members alive everywhere`)
    return nodes
  }

  /** Tries to remove a key; false while the node refuses it as still in use. */
  function removed(n: Grapevine, key: string): boolean {
    try {
      n.keyring.remove(key)
      return true
    } catch (err) {
      if ((err as { code?: string }).code === 'GV_ERR_KEY_IN_USE') return false
      throw err
    }
  }

  function alive(n: Grapevine): number {
    return n.members().filter((m) => m.status === 'alive').length
  }

  function drops(nodes: readonly Grapevine[], reason: DropReason): number {
    return nodes.reduce((s, n) => s + n.stats.dropped(reason), 0)
  }

  /** Writes `prefix/i` on a rotating node every `everyMs` until stopped; returns the keys written. */
  function writer(nodes: readonly Grapevine[], prefix: string, everyMs: number): { stop: () => Promise<string[]> } {
    const keys: string[] = []
    let running = true
    const loop = (async () => {
      for (let i = 0; running; i++) {
        const key = `${prefix}/${i}`
        nodes[i % nodes.length]!.set(key, String(i))
        keys.push(key)
        await sleep(everyMs)
      }
    })()
    return {
      stop: async () => {
        running = false
        await loop
        return keys
      },
    }
  }

  async function assertAllHeld(nodes: readonly Grapevine[], keys: readonly string[]): Promise<void> {
    const holdsAll = (n: Grapevine): boolean => keys.every((k) => n.get(k)?.value === k.slice(k.indexOf('/') + 1))
    const ok = await waitFor(() => nodes.every(holdsAll), 15_000)
    const missing = nodes.map((n) => `${n.name}: ${keys.filter((k) => n.get(k) === undefined).length} missing`)
    assert.ok(ok, `every acknowledged write on every node (${missing.join(', ')})`)
    assert.ok(await waitFor(() => nodes.every((n) => n.stateHash === nodes[0]!.stateHash), 5_000), 'state hashes agree')
  }

  test('key rotation on a live encrypted cluster loses no write', async () => {
    const k1 = generateKey()
    const k2 = generateKey()
    const nodes = await cluster('rot', 5, { encryption: { keys: [k1], keyInUseMs: 400 } })
    const w = writer(nodes, 'rot', 15)
    await sleep(300)
    for (const n of nodes) n.keyring.install(k2)
    await sleep(300)
    for (const n of nodes) {
      n.keyring.use(k2)
      await sleep(60)
    }
    await sleep(300)
    // Removal is refused while a peer's packet under k1 opened within keyInUseMs; once all use k2 it goes through.
    for (const n of nodes) assert.ok(await waitFor(() => removed(n, k1), 5000), `${n.name} removed k1`)
    await sleep(300)
    const keys = await w.stop()
    assert.ok(keys.length > 50, `writes flowed during the rotation (${keys.length})`)
    await assertAllHeld(nodes, keys)
    for (const n of nodes) assert.deepEqual(n.keyring.list().map((k) => [k.key, k.primary]), [[k2, true]])
    assert.equal(drops(nodes, 'decrypt-failed'), 0, 'no packet failed to decrypt')
    assert.equal(drops(nodes, 'unknown-key'), 0, 'no packet under a key a node lacked')
    assert.ok(nodes.every((n) => alive(n) === 5), 'no member lost during the rotation')
  })

  test('a plaintext cluster moves to encryption without downtime, then keeps plaintext nodes out', async () => {
    const k = generateKey()
    // Step 0: a node of the old plaintext cluster, and nodes restarted with the key but not enforcing it.
    const plain = await start('mig-plain', [], {})
    const lenient = { encryption: { keys: [k], verifyIncoming: false, verifyOutgoing: false } }
    const nodes = [await start('mig1', [plain.address], lenient)]
    for (let i = 2; i <= 4; i++) nodes.push(await start(`mig${i}`, [nodes[0]!.address], lenient))
    assert.ok(await waitFor(() => [plain, ...nodes].every((x) => alive(x) === 5), 10_000), 'plaintext and lenient nodes form one cluster')
    plain.set('mig/from-plain', 'from-plain')
    assert.ok(await waitFor(() => nodes.every((n) => n.get('mig/from-plain') !== undefined), 5_000))
    // The plaintext node is restarted with the key as well (here: leaves).
    await plain.leave()
    await plain.stop()
    const w = writer(nodes, 'mig', 15)
    await sleep(300)
    for (const n of nodes) {
      n.setEncryption({ verifyOutgoing: true })
      await sleep(50)
    }
    await sleep(300)
    for (const n of nodes) {
      n.setEncryption({ verifyIncoming: true })
      await sleep(50)
    }
    await sleep(300)
    const keys = await w.stop()
    await assertAllHeld(nodes, [...keys, 'mig/from-plain'])
    assert.ok(nodes.every((n) => n.encryption?.verifyIncoming === true && n.encryption.verifyOutgoing))
    // Now a plaintext node cannot join: it learns nothing and changes nothing.
    const hash = nodes[0]!.stateHash
    const outsider = await start('mig-outsider', [nodes[1]!.address], { joinTimeoutMs: 500 })
    outsider.set('mig/intruder', 'x')
    await sleep(1500)
    assert.equal(outsider.entries({ prefix: 'mig/' }).length, 1, 'the outsider learned nothing')
    assert.deepEqual(outsider.members().map((m) => m.name), ['mig-outsider'])
    assert.ok(nodes.every((n) => n.stateHash === hash && n.get('mig/intruder') === undefined), 'the cluster changed nothing')
    assert.ok(nodes.every((n) => !n.members().some((m) => m.name === 'mig-outsider')))
    assert.ok(drops(nodes, 'unencrypted') > 0, 'its packets were counted as refused plaintext')
  })

  test('a node with the wrong key, or of another cluster, is kept out', async () => {
    const k = generateKey()
    const nodes = await cluster('keep', 3, { encryption: { keys: [k] }, label: 'blue' })
    nodes[0]!.set('keep/secret', 'v')
    assert.ok(await waitFor(() => nodes.every((n) => n.get('keep/secret') !== undefined), 5_000))
    const hash = nodes[0]!.stateHash
    const warnings: string[] = []
    nodes[1]!.on('warning', (w) => warnings.push(w))
    const wrongKey = await start('keep-wrong-key', [nodes[1]!.address], { encryption: { keys: [generateKey()] }, label: 'blue', joinTimeoutMs: 500 })
    const otherLabel = await start('keep-other-label', [nodes[1]!.address], { encryption: { keys: [k] }, label: 'green', joinTimeoutMs: 500 })
    wrongKey.set('keep/intruder', 'x')
    otherLabel.set('keep/intruder', 'y')
    await sleep(1500)
    for (const outsider of [wrongKey, otherLabel]) {
      assert.equal(outsider.get('keep/secret'), undefined, `${outsider.name} learned nothing`)
      assert.deepEqual(outsider.members().map((m) => m.name), [outsider.name])
    }
    assert.ok(nodes.every((n) => n.stateHash === hash && n.get('keep/intruder') === undefined), 'the cluster changed nothing')
    assert.ok(nodes.every((n) => n.members().length === 3), 'no outsider became a member')
    assert.ok(drops(nodes, 'unknown-key') > 0 && drops(nodes, 'label-mismatch') > 0)
    assert.equal(warnings.filter((w) => w.includes(wrongKey.address)).length, 1, 'the wrong key is said once, not per packet')
  })
})
