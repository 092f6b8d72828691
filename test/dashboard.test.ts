/**
 * The dashboard end to end in headless Chromium (Debian's `chromium`,
 * driven by playwright-core): two agents; a change made through the API of
 * one shows on the other's page (keys table and live feed), with both
 * members and the convergence badge; a screenshot is taken.
 */
import assert from 'node:assert/strict'
import { existsSync, mkdtempSync, statSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { after, describe, test } from 'node:test'
import { chromium } from 'playwright-core'
import { type AgentProcess, api, startAgent, stopAgent } from './helpers/agent-process.js'

const CHROMIUM = process.env.GRAPEVINE_CHROMIUM ?? '/usr/bin/chromium'

describe('dashboard', () => {
  const agents: AgentProcess[] = []
  after(async () => {
    await Promise.all(agents.map((a) => stopAgent(a, 'SIGKILL')))
  })

  test('shows members, a change made through the API, the live feed and convergence', async (t) => {
    assert.ok(existsSync(CHROMIUM), `no Chromium at ${CHROMIUM}: .ci/run installs Debian's chromium (apt-get install chromium), or set GRAPEVINE_CHROMIUM`)
    const a = await startAgent('dash1')
    agents.push(a)
    const b = await startAgent('dash2', ['--join', a.gossip])
    agents.push(b)
    const browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    })
    try {
      const page = await browser.newPage({ viewport: { width: 1280, height: 800 } })
      await page.goto(`http://${b.http}/`)
      await page.locator('#members tr', { hasText: 'dash1' }).waitFor({ timeout: 15_000 })
      await page.locator('#members tr', { hasText: 'dash2' }).waitFor({ timeout: 15_000 })
      // The change is made at dash1; dash2's page must show it.
      const put = await api(a, 'PUT', '/v1/kv/service_version', 'v1.3.0')
      assert.equal(put.status, 200)
      await page.locator('#keys tr', { hasText: 'service_version' }).waitFor({ timeout: 15_000 })
      assert.match(await page.locator('#keys tr', { hasText: 'service_version' }).innerText(), /v1\.3\.0\s+dash1/)
      await page.locator('#feed li', { hasText: 'service_version' }).waitFor({ timeout: 5_000 })
      assert.match(await page.locator('#feed li').first().innerText(), /service_version = v1\.3\.0 by dash1 via dash1/)
      await page.locator('#converged[data-converged="true"]').waitFor({ timeout: 15_000 })
      assert.equal(await page.locator('#converged').innerText(), 'converged')
      const alive = await page.locator('#members td.st-alive').count()
      assert.equal(alive, 2)
      const shot = path.join(mkdtempSync(path.join(os.tmpdir(), 'gv-dash-')), 'dashboard.png')
      await page.waitForTimeout(2500) // a few traffic samples for the chart
      await page.screenshot({ path: shot, fullPage: true })
      assert.ok(statSync(shot).size > 10_000, 'a screenshot was written')
      t.diagnostic(`screenshot: ${shot}`)
    } finally {
      await browser.close()
    }
  })

  test('with a token: the page asks for it once, then shows the data and the live feed', async () => {
    const a = await startAgent('dash3', ['--http-token', 'dash-token'])
    agents.push(a)
    const auth = { authorization: 'Bearer dash-token' }
    assert.equal((await api(a, 'PUT', '/v1/kv/before', 'b', auth)).status, 200)
    const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking'] })
    try {
      const page = await browser.newPage()
      await page.goto(`http://${a.http}/`)
      await page.locator('#auth').waitFor({ state: 'visible', timeout: 15_000 })
      assert.equal(await page.locator('#keys tr').count(), 0, 'nothing shown without the token')
      await page.fill('#token', 'dash-token')
      await page.click('#auth button')
      await page.locator('#keys tr', { hasText: 'before' }).waitFor({ timeout: 15_000 })
      await page.locator('#members tr', { hasText: 'dash3' }).waitFor({ timeout: 15_000 })
      assert.equal(await page.locator('#auth').isVisible(), false)
      assert.equal((await api(a, 'PUT', '/v1/kv/after', 'a', auth)).status, 200)
      await page.locator('#feed li', { hasText: 'after' }).waitFor({ timeout: 15_000 })
      // Kept for the tab: a reload does not ask again.
      await page.reload()
      await page.locator('#keys tr', { hasText: 'after' }).waitFor({ timeout: 15_000 })
      assert.equal(await page.locator('#auth').isVisible(), false)
    } finally {
      await browser.close()
    }
  })
})
