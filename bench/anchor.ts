/**
 * HashiCorp memberlist on this machine, as a baseline measured in the same
 * bench run: the anchor harness in `../shared/anchors/memberlist` (N
 * memberlist 0.2.2 nodes in one Go process on loopback, LAN preset). Runs
 * only when that harness, Go and the memberlist sources are installed
 * (`run.sh` installs them with apt when run by hand); otherwise the task
 * reports why it did not run.
 */
import { type SpawnSyncReturns, spawnSync } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { type AnchorResult, type AnchorTask, progress } from './common.js'

const here = path.dirname(fileURLToPath(import.meta.url))
const script = path.resolve(here, '..', '..', '..', 'shared', 'anchors', 'memberlist', 'run.sh')

function installed(): string | undefined {
  if (!existsSync(script)) return `no anchor harness at ${script}`
  if (spawnSync('sh', ['-c', 'command -v go'], { encoding: 'utf8' }).status !== 0) return 'Go is not installed (run the anchor script once by hand to install it)'
  if (!existsSync('/usr/share/gocode/src/github.com/hashicorp/memberlist')) return 'memberlist sources are not installed'
  return undefined
}

export function runAnchor(task: AnchorTask): AnchorResult {
  const missing = installed()
  if (missing !== undefined) return { kind: 'anchor', n: task.n, skipped: missing, runs: [] }
  const runs: AnchorResult['runs'] = []
  const failedAttempts: string[] = []
  for (let r = 0; r < task.runs; r++) {
    const json = path.join(mkdtempSync(path.join(os.tmpdir(), 'gv-anchor-')), 'ml.jsonl')
    // A failed run (the harness's join sometimes does not converge on a busy machine) is tried once more, on other ports.
    let out: SpawnSyncReturns<string> | undefined
    for (let attempt = 0; attempt < 2; attempt++) {
      const port = task.basePort + r * (task.n + 10) + attempt * 5000
      const args = ['-n', String(task.n), '-config', 'lan', '-port', String(port), '-json', json]
      out = spawnSync(script, args, { encoding: 'utf8', timeout: 6 * 60_000 })
      if (out.status === 0 && existsSync(json)) break
      const why = `run ${r}: run.sh exited with ${out.status ?? out.signal}: ${(out.stderr ?? '').trim().slice(-200)}`
      failedAttempts.push(why)
      progress(`  memberlist n=${task.n} ${why}`)
    }
    if (out === undefined || out.status !== 0 || !existsSync(json)) {
      return { kind: 'anchor', n: task.n, skipped: failedAttempts.join('; '), runs, failedAttempts }
    }
    const j = JSON.parse(readFileSync(json, 'utf8').trim().split('\n').pop()!) as {
      join_converge_ms: number
      fail_detect_ms: number[]
      first_suspect_ms: number
      steady: { total_bytes_per_node_s: number }
      maxrss_kib: number
    }
    runs.push({
      joinMs: j.join_converge_ms,
      allDeadMs: Math.max(...j.fail_detect_ms),
      firstSuspectMs: j.first_suspect_ms,
      idleBytesPerNodePerSec: j.steady.total_bytes_per_node_s,
      peakRssKib: j.maxrss_kib,
    })
    progress(`  memberlist n=${task.n} run ${r}: join ${j.join_converge_ms.toFixed(0)} ms, detection ${Math.max(...j.fail_detect_ms).toFixed(0)} ms`)
  }
  return { kind: 'anchor', n: task.n, skipped: undefined, runs, failedAttempts }
}
