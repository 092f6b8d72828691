/**
 * The hostile peer against a live two-node cluster on real sockets: every
 * message type and field with boundary and hostile values (see
 * helpers/hostile-peer.ts), each case once with its drop reason checked,
 * then 100,000 messages in batches with the cluster checked after each
 * (both victims running, honest data intact on both, each sees the other
 * alive, fresh writes spread, drops counted by reason, internal-error 0).
 *
 * GRAPEVINE_SEED=N replays a run; GRAPEVINE_HOSTILE_MESSAGES=N changes the volume.
 */
import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { DEFAULT_LIMITS } from '../src/codec/limits.js'
import { decodeMessage, encodeMessage } from '../src/codec/messages.js'
import { runHostile } from './helpers/hostile-cluster.js'
import { caseTemplates, honestBaselines } from './helpers/hostile-peer.js'
import { MessageType } from '../src/codec/messages.js'

const SEED = Number(process.env.GRAPEVINE_SEED ?? 14)
const MESSAGES = Number(process.env.GRAPEVINE_HOSTILE_MESSAGES ?? 100_000)

describe('the hostile peer', () => {
  test('its raw writer writes the real layout: one honest message of every type, byte for byte', () => {
    const seen = new Set<MessageType>()
    for (const b of honestBaselines()) {
      assert.deepEqual(b.raw, encodeMessage(b.real), `${MessageType[b.type]}: raw layout differs from the encoder`)
      assert.doesNotThrow(() => decodeMessage(b.raw, DEFAULT_LIMITS, 65_535))
      seen.add(b.type)
    }
    assert.equal(seen.size, 14, 'every message type')
  })

  test('it has cases for every message type, uniquely named, each with an expected outcome', () => {
    const templates = caseTemplates()
    const names = new Set(templates.map((t) => t.name))
    assert.equal(names.size, templates.length, 'case names are unique')
    for (const type of Object.values(MessageType).filter((v) => typeof v === 'string')) {
      assert.ok(templates.some((t) => t.name.startsWith(`${type}.`) || t.name.startsWith(`${type}(tcp).`)), `cases for ${type}`)
    }
    assert.ok(templates.every((t) => t.expect.length > 0))
  })

  test(`${MESSAGES.toLocaleString('en')} hostile messages over real UDP and TCP to a live cluster: nothing crashes, is poisoned or is lost`, async (t) => {
    const uncaught: Error[] = []
    const onUncaught = (err: Error): void => {
      uncaught.push(err)
    }
    process.on('uncaughtException', onUncaught)
    try {
      const report = await runHostile({ seed: SEED, messages: MESSAGES, log: (line) => t.diagnostic(line) })
      const { failures, ...rest } = report
      t.diagnostic(JSON.stringify(rest))
      assert.deepEqual(uncaught, [], 'no exception escaped in the test process')
      const list = failures.map((f) => `  [${f.phase}] ${f.case}: expected ${f.expected}; observed ${f.observed}${f.finding ? ` (known finding: ${f.finding})` : ''}`)
      assert.equal(failures.length, 0, `seed ${SEED} (GRAPEVINE_SEED=${SEED} replays): ${failures.length} hostile cases failed:\n${list.join('\n')}`)
      assert.equal(report.crashes, 0, 'no victim crashed')
      assert.ok(report.messagesSent >= MESSAGES, `sent ${report.messagesSent}`)
      assert.ok(report.received >= 0.9 * report.messagesSent, `the victims counted ${report.received} of ${report.messagesSent} messages as received`)
      assert.equal(report.dropsByReason['internal-error'] ?? 0, 0, 'internal-error stays 0')
    } finally {
      process.off('uncaughtException', onUncaught)
    }
  })
})
