/**
 * EntrySlots is an open-addressing table with backward-shift deletion: after
 * any sequence of inserts, replacements and removals it must answer exactly
 * as a Map would. The keys are chosen to make probe runs long: many keys
 * (so the table grows several times), and a set whose home positions all sit
 * at the end of the initial table (so their runs wrap around to position 0,
 * where deletion's cyclic range test is easiest to get wrong).
 */
import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import fc from 'fast-check'
import { EntrySlots, INITIAL_TABLE, keyHashOf } from '../src/state/entry-slots.js'
import type { Entry } from '../src/state/entry.js'


function entry(key: string, ts: number): Entry {
  return { key, value: `v${ts}`, ts, origin: 'o~1', expiresAt: undefined }
}

/** Keys whose home position in the initial table is one of its last `tail` positions. */
function keysHomedAtTableEnd(count: number, tail: number): string[] {
  const out: string[] = []
  for (let i = 0; out.length < count; i++) {
    const key = `w${i}`
    if ((keyHashOf(key) & (INITIAL_TABLE - 1)) >= INITIAL_TABLE - tail) out.push(key)
  }
  return out
}

type Op = { readonly kind: 'put' | 'remove'; readonly key: string }

/** Applies `ops` to EntrySlots and to a Map model, checking every answer on the way and at the end. */
function checkAgainstModel(ops: readonly Op[], probeKeys: readonly string[]): void {
  const slots = new EntrySlots()
  const model = new Map<string, Entry>()
  let ts = 0
  for (const op of ops) {
    const slot = slots.slotOf(op.key)
    assert.equal(slot === undefined, !model.has(op.key), `lookup of ${op.key} before ${op.kind}`)
    if (op.kind === 'put') {
      const e = entry(op.key, ++ts)
      if (slot === undefined) slots.insert(e)
      else slots.replace(slot, e)
      model.set(op.key, e)
    } else if (slot !== undefined) {
      slots.remove(slot)
      model.delete(op.key)
    }
  }
  assert.equal(slots.size, model.size)
  for (const key of probeKeys) {
    const slot = slots.slotOf(key)
    const held = model.get(key)
    if (held === undefined) assert.equal(slot, undefined, `${key} must be absent`)
    else {
      assert.notEqual(slot, undefined, `${key} must be found`)
      assert.equal(slots.entryIn(slot!), held)
      assert.ok(slots.isCurrent(held))
    }
  }
  const listed = new Map<string, Entry>()
  for (const [key, slot] of slots.slots()) listed.set(key, slots.entryIn(slot))
  assert.deepEqual(listed, model)
}

describe('EntrySlots', () => {
  test('matches a Map over random inserts, replacements and removals (many keys, growth)', () => {
    const keys = Array.from({ length: 3000 }, (_, i) => `k${i}`)
    fc.assert(
      fc.property(
        fc.array(fc.record({ kind: fc.constantFrom('put', 'put', 'remove'), key: fc.constantFrom(...keys) }), { minLength: 2000, maxLength: 6000 }),
        (ops) => checkAgainstModel(ops as Op[], keys),
      ),
      { numRuns: 40 },
    )
  })

  test('matches a Map when probe runs wrap around the end of the table', () => {
    // Fewer keys than make the initial table grow (it stays at most half full), all homed in its last quarter.
    const keys = keysHomedAtTableEnd(INITIAL_TABLE / 2 - 1, INITIAL_TABLE / 4)
    fc.assert(
      fc.property(
        fc.array(fc.record({ kind: fc.constantFrom('put', 'remove'), key: fc.constantFrom(...keys) }), { minLength: 20, maxLength: 400 }),
        (ops) => checkAgainstModel(ops as Op[], keys),
      ),
      { numRuns: 300 },
    )
  })

  test('an entry replaced in its slot is no longer current, and a reused slot does not revive it', () => {
    const slots = new EntrySlots()
    const a1 = entry('a', 1)
    const slot = slots.insert(a1)
    const a2 = entry('a', 2)
    slots.replace(slot, a2)
    assert.equal(slots.isCurrent(a1), false)
    assert.equal(slots.isCurrent(a2), true)
    slots.remove(slot)
    const b = entry('b', 3)
    assert.equal(slots.insert(b), slot, 'the freed slot is reused')
    assert.equal(slots.isCurrent(a2), false)
    assert.equal(slots.isCurrent(b), true)
  })
})
