#!/usr/bin/env node
import { readFileSync } from 'node:fs'
import { Command } from 'commander'
import { runDemo } from './demo.js'

const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string }

const program = new Command()
program.name('grapevine').description('Gossip-protocol cluster state and membership for Node.js').version(pkg.version)

program
  .command('demo')
  .description('run five nodes on loopback UDP and watch an update and a delete spread')
  .option('--interval-ms <ms>', 'gossip interval', '1000')
  .option('--fanout <n>', 'peers per round (1 shows the epidemic hop by hop)', '1')
  .action(async (opts: { intervalMs: string; fanout: string }) => {
    const ok = await runDemo({ gossipIntervalMs: Number(opts.intervalMs), fanout: Number(opts.fanout) })
    process.exitCode = ok ? 0 : 1
  })

await program.parseAsync(process.argv)
