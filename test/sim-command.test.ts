/**
 * `grapevine sim`: the summary's fields are present and sane for a small
 * run, the same seed gives the same output byte for byte (but for wall time
 * and memory), and a scripted partition shows in the time series.
 */
import assert from 'node:assert/strict'
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { describe, test } from 'node:test'
import { cli } from './helpers/agent-process.js'
import { runExperiment } from '../src/sim/experiment.js'

function withoutMeasured(json: string): Record<string, unknown> {
  const o = JSON.parse(json) as Record<string, unknown>
  delete o.wallMs
  delete o.peakRssBytes
  return o
}

describe('grapevine sim', () => {
  test('the JSON summary has every field, with sane values', () => {
    const r = cli(['sim', '--nodes', '100', '--duration', '15s', '--crash', '1@3s', '--seed', '4', '--json'])
    assert.equal(r.code, 0, r.stderr)
    const s = JSON.parse(r.stdout) as Record<string, unknown>
    for (const k of ['nodes', 'fanout', 'intervalMs', 'loss', 'seed', 'roundsToAll', 'timeToAllMs', 'timeTo99PctMs', 'messagesPerNodePerSec', 'bytesPerNodePerSec', 'detectionMs', 'falsePositives', 'wallMs', 'peakRssBytes']) {
      assert.ok(k in s, `field ${k}`)
    }
    assert.equal(s.nodes, 100)
    assert.ok((s.roundsToAll as number) > 0 && (s.roundsToAll as number) < 5, `rounds ${s.roundsToAll}`)
    assert.ok((s.timeTo99PctMs as number) <= (s.timeToAllMs as number))
    const d = s.detectionMs as { p50: number; p99: number; samples: number; undetected: number }
    assert.ok(d.p50 > 1000 && d.p50 <= d.p99 && d.p99 < 12_000, JSON.stringify(d))
    assert.equal(d.samples, 99, 'every live node marked the crashed one dead')
    assert.equal(s.falsePositives, 0)
    assert.ok((s.bytesPerNodePerSec as number) > 0 && (s.peakRssBytes as number) > 0)
  })

  test('the same seed gives the same output, byte for byte', () => {
    const dirs = [0, 1].map(() => mkdtempSync(path.join(os.tmpdir(), 'gv-sim-')))
    const args = ['sim', '--nodes', '60', '--duration', '10s', '--loss', '0.1', '--latency-ms', '1..30', '--writes-per-sec', '5', '--crash', '2@4s', '--seed', '9', '--json']
    const runs = dirs.map((d) => cli([...args, '--out', d]))
    assert.deepEqual(withoutMeasured(runs[0]!.stdout), withoutMeasured(runs[1]!.stdout))
    const csv = dirs.map((d) => readFileSync(path.join(d, 'timeseries.csv'), 'utf8'))
    assert.equal(csv[0], csv[1])
    assert.ok(csv[0]!.split('\n').length > 50)
    // Plots: valid SVG and PNG, the same bytes from the same seed.
    for (const name of ['epidemic', 'traffic', 'detection']) {
      const svgs = dirs.map((d) => readFileSync(path.join(d, `${name}.svg`), 'utf8'))
      assert.match(svgs[0]!, /^<svg[^>]*xmlns="http:\/\/www\.w3\.org\/2000\/svg"[\s\S]*<\/svg>\s*$/, `${name}.svg is an SVG document`)
      assert.equal(svgs[0], svgs[1], `${name}.svg is reproducible`)
      const png = readFileSync(path.join(dirs[0]!, `${name}.png`))
      assert.deepEqual([...png.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a], `${name}.png has the PNG signature`)
      assert.equal(png.toString('ascii', 12, 16), 'IHDR')
      assert.ok(png.readUInt32BE(16) >= 640 && png.readUInt32BE(20) >= 200, `${name}.png has a real size`)
      assert.ok(png.equals(readFileSync(path.join(dirs[1]!, `${name}.png`))), `${name}.png is reproducible`)
    }
    const other = cli([...args.slice(0, -3), '--seed', '10', '--json'])
    assert.notDeepEqual(withoutMeasured(other.stdout), withoutMeasured(runs[0]!.stdout), 'another seed, another run')
  })

  test('a scripted partition shows in the time series, and heals', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'gv-sim-'))
    const scenario = path.join(dir, 'scenario.json')
    writeFileSync(
      scenario,
      JSON.stringify({
        nodes: 50,
        duration: '20s',
        seed: 3,
        events: [
          { at: '2s', partition: 0.5 },
          { at: '3s', write: { key: 'split', value: 'left side', node: 0 } },
          { at: '10s', heal: true },
        ],
      }),
    )
    const r = cli(['sim', '--scenario', scenario, '--out', dir, '--json'])
    assert.equal(r.code, 0, r.stderr)
    const rows = readFileSync(path.join(dir, 'timeseries.csv'), 'utf8').trim().split('\n').slice(1).map((l) => l.split(',').map(Number))
    const at = (ms: number): number[] => rows.find((x) => x[0] === ms)!
    assert.equal(at(5000)[8], 1, 'partitioned at 5 s')
    assert.ok(at(5000)[1]! <= 0.5, `during the partition the write stays on its side (${at(5000)[1]})`)
    assert.equal(at(15_000)[8], 0, 'healed at 15 s')
    const s = JSON.parse(r.stdout) as { timeToAllMs: number; converged: boolean }
    assert.ok(s.timeToAllMs > 7000, `the write reached everyone only after the heal (${s.timeToAllMs} ms after it was made)`)
    assert.equal(s.converged, true)
  })

  test('members by status in the time series follow crashes, detection and restarts', () => {
    const spec = { nodes: 40, fanout: 3, intervalMs: 1000, preset: 'lan' as const, loss: 0, latencyMs: [1, 1] as const, eagerPush: true, writesPerSec: 0, seed: 5 }
    const rowAt = (rows: readonly { tMs: number }[], ms: number) => rows.find((x) => x.tMs === ms)!
    const crashed = runExperiment({ ...spec, durationMs: 15_000, events: [{ at: 2000, kind: 'crash', count: 3 }] })
    assert.deepEqual(rowAt(crashed.timeSeries, 1000), { ...rowAt(crashed.timeSeries, 1000), alive: 40 * 40, suspect: 0, dead: 0 }, 'a formed cluster: everyone alive in every view')
    const end = crashed.timeSeries.at(-1)!
    assert.equal(end.dead, 3 * 37, 'each of the 37 live nodes holds the 3 crashed ones dead')
    assert.equal(end.alive, 37 * 37)
    assert.equal(end.suspect, 0)
    const back = runExperiment({ ...spec, durationMs: 25_000, events: [{ at: 2000, kind: 'crash', count: 3 }, { at: 12_000, kind: 'restart' }] })
    const last = back.timeSeries.at(-1)!
    assert.equal(last.alive, 40 * 40, 'the restarted processes rejoined, and every view holds all 40 alive')
    assert.equal(last.dead + last.suspect, 0)
  })
})
