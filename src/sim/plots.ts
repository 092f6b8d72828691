import { Resvg } from '@resvg/resvg-js'
import * as vega from 'vega'
import { compile, type TopLevelSpec } from 'vega-lite'
import type { ExperimentResult } from './experiment.js'
import { meanFieldInformed } from './theory-curve.js'

/**
 * The plots of `grapevine sim --out`, drawn by vega-lite (rendered to SVG in
 * Node, no native code) and converted to PNG by resvg:
 * - epidemic.svg/png: the share of live nodes holding the first write against
 *   time since it was made, beside the mean-field curve of random push-pull
 *   at the same fanout (whole rounds of the interval);
 * - traffic.svg/png: bytes sent per node per second over the run;
 * - detection.svg/png: the distribution of crash detection times (when a
 *   crash was scripted).
 * The same result gives the same files, byte for byte.
 */
export interface Plot {
  readonly name: string
  readonly svg: string
  readonly png: Uint8Array
}

const WIDTH = 640
const HEIGHT = 320

async function render(name: string, spec: TopLevelSpec): Promise<Plot> {
  const view = new vega.View(vega.parse(compile(spec).spec), { renderer: 'none' })
  const svg = await view.toSVG()
  view.finalize()
  const png = new Resvg(svg, { background: 'white', fitTo: { mode: 'width', value: 2 * WIDTH }, font: { loadSystemFonts: true } }).render().asPng()
  return { name, svg, png }
}

const base = { width: WIDTH, height: HEIGHT, config: { font: 'sans-serif', view: { stroke: null } } } as const

export async function experimentPlots(r: ExperimentResult): Promise<Plot[]> {
  const plots: Plot[] = []
  if (r.firstWriteAtMs !== null) {
    const t0 = r.firstWriteAtMs
    const horizonMs = Math.min(r.durationMs - t0, Math.max(5 * r.intervalMs, (r.timeToAllMs ?? r.durationMs - t0) * 1.5))
    const measured = r.timeSeries
      .filter((row) => row.tMs >= t0 && row.tMs - t0 <= horizonMs)
      .map((row) => ({ seconds: (row.tMs - t0) / 1000, informed: row.informedFirst, curve: 'engine (measured)' }))
    const rounds = Math.ceil(horizonMs / r.intervalMs)
    const theory = meanFieldInformed(r.nodes, r.fanout, rounds).map((informed, i) => ({
      seconds: (i * r.intervalMs) / 1000,
      informed,
      curve: `random push-pull, fanout ${r.fanout} (mean field, rounds of ${r.intervalMs} ms)`,
    }))
    plots.push(
      await render('epidemic', {
        ...base,
        title: `One update through ${r.nodes} nodes (fanout ${r.fanout}, loss ${r.loss}, eager push ${r.eagerPush ? 'on' : 'off'}, seed ${r.seed})`,
        data: { values: [...measured, ...theory] },
        mark: { type: 'line', interpolate: 'linear', point: false },
        encoding: {
          x: { field: 'seconds', type: 'quantitative', title: 'seconds since the write' },
          y: { field: 'informed', type: 'quantitative', title: 'share of live nodes holding it', scale: { domain: [0, 1] } },
          color: { field: 'curve', type: 'nominal', title: null, legend: { orient: 'bottom', labelLimit: 500 } },
          strokeDash: { field: 'curve', type: 'nominal', title: null, legend: { orient: 'bottom', labelLimit: 500 } },
        },
      }),
    )
  }
  plots.push(
    await render('traffic', {
      ...base,
      title: `Traffic per node (${r.nodes} nodes, seed ${r.seed})`,
      data: { values: r.timeSeries.filter((row) => row.tMs > 0).map((row) => ({ seconds: row.tMs / 1000, bytes: row.bytesPerNodePerSec, partitioned: row.partitioned })) },
      mark: { type: 'line' },
      encoding: {
        x: { field: 'seconds', type: 'quantitative', title: 'simulated seconds' },
        y: { field: 'bytes', type: 'quantitative', title: 'bytes sent per node per second' },
      },
    }),
  )
  if (r.detectionSamples.length > 0) {
    plots.push(
      await render('detection', {
        ...base,
        title: `Crash detection: time until each live node marked a crashed node dead (${r.detectionSamples.length} observations)`,
        data: { values: r.detectionSamples.map((ms) => ({ seconds: ms / 1000 })) },
        mark: { type: 'bar' },
        encoding: {
          x: { field: 'seconds', type: 'quantitative', bin: { maxbins: 40 }, title: 'seconds from the crash' },
          y: { aggregate: 'count', type: 'quantitative', title: 'observers' },
        },
      }),
    )
  }
  return plots
}
