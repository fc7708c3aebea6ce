// The web dashboard in a real browser (issue 18, item 1): Debian's chromium, driven by
// playwright-core, against a real cluster of three masters and four chunkservers. The page is
// opened on a follower and must end on the leader; a chunkserver is killed and the page, never
// reloaded, must show it dead, the under-replicated count rise and fall back to 0 as copies run,
// and the failure tolerance change; then the leader is killed and the page must find the new
// one by itself. Screenshots go to .tap/dashboard/.
//
// Chromium is not optional here: without it the test fails and says how to install it (CI does).
import t from 'tap';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { randomBytesSeeded, ROOT, TestCluster } from '../helpers/cluster.js';

const CHROMIUM = process.env.DFS_CHROMIUM ?? '/usr/bin/chromium';
const ARTIFACTS = join(ROOT, '.tap', 'dashboard');
const CHUNK = 128 * 1024;
/** The goal for the page's own files (html, css, script), before compression. */
const MAX_PAGE_BYTES = 300 * 1024;

/** What the page shows, read from its DOM. */
interface Shown { under: number; tolerance: string; states: Record<string, string>; matrix: string[]; copiesIn: number }

function shown(page: Page): Promise<Shown> {
  return page.evaluate(() => ({
    under: Number(document.querySelector('#totals [data-key="underReplicated"] dd')?.textContent ?? NaN),
    tolerance: document.getElementById('tolerance-cs')?.textContent ?? '',
    states: Object.fromEntries([...document.querySelectorAll<HTMLElement>('#chunkservers tr[data-server]')].map((r) => [r.dataset.server!, r.dataset.state!])),
    matrix: [...document.querySelectorAll<HTMLElement>('#matrix td[data-cell]')].map((td) => `${td.dataset.cell}:${td.className}`),
    copiesIn: [...document.querySelectorAll<HTMLElement>('#chunkservers [data-copies-in]')].reduce((n, td) => n + Number(td.dataset.copiesIn), 0),
  }));
}

function replicasShown(page: Page): Promise<string[][]> {
  return page.evaluate(() => [...document.querySelectorAll('#file-chunks tr[data-chunk]')].map((tr) => [...tr.querySelectorAll<HTMLElement>('[data-replica]')].map((a) => a.dataset.replica!)));
}

t.test('the dashboard, opened on a follower, shows a chunkserver die and the cluster heal, without reloading', async (t) => {
  t.setTimeout(300_000);
  if (!existsSync(CHROMIUM)) {
    t.fail(`no Chromium at ${CHROMIUM}: this test needs a real browser. Install Debian's (apt-get install -y chromium) or set DFS_CHROMIUM to a Chromium binary`);
    return;
  }
  mkdirSync(ARTIFACTS, { recursive: true });
  t.comment(`screenshots in ${ARTIFACTS}`);

  const c = await TestCluster.start({
    masters: 3, chunkservers: 4, chunkSizeBytes: CHUNK, deadTimeoutMs: 2000, racks: ['r1', 'r1', 'r2', 'r2'],
    // Copies slow enough that the page, polling once a second, sees the repair under way.
    chunkserverArgs: ['--copy-rate', '0.25'],
  });
  t.teardown(() => c.stop());
  const big = randomBytesSeeded(20 * CHUNK, 18);
  t.equal((await c.dfs(['put', '-', '/data/big.bin'], { input: big })).code, 0, 'put /data/big.bin');
  t.equal((await c.dfs(['put', '-', '/docs/readme.txt'], { input: 'hello dashboard\n' })).code, 0, 'put /docs/readme.txt');
  t.equal((await c.dfs(['put', '-', '/top.txt'], { input: 'top\n' })).code, 0, 'put /top.txt');

  const leader = await c.leader();
  const followerAddr = c.masterAddresses.find((_, i) => i !== leader.index)!;
  const profile = mkdtempSync(join(tmpdir(), 'dfs-chromium-'));
  t.teardown(() => rmSync(profile, { recursive: true, force: true }));
  const browser: BrowserContext = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    viewport: { width: 1280, height: 1000 },
  });
  t.teardown(() => browser.close());
  const page = browser.pages()[0] ?? await browser.newPage();
  page.setDefaultTimeout(20_000);
  const consoleErrors: string[] = [];
  page.on('console', (msg) => {
    if (msg.type() === 'error') consoleErrors.push(msg.text());
  });
  page.on('pageerror', (err) => consoleErrors.push(`uncaught: ${err.message}`));
  const pageBytes = new Map<string, number>();
  page.on('response', (res) => {
    const url = new URL(res.url());
    if (!url.pathname.startsWith('/ui/') || res.status() !== 200) return;
    res.body().then((b) => pageBytes.set(url.pathname, b.length), () => undefined);
  });

  // Without a token the cluster view is open and the namespace is not (docs/SECURITY.md).
  const anonymous = await fetch(`http://${leader.proc.addr}/v1/ui/state?dir=/`).then((r) => r.json()) as { status?: unknown; dir?: { error?: { code: string } } };
  t.ok(anonymous.status, 'an anonymous poll gets the cluster view');
  t.equal(anonymous.dir?.error?.code, 'UNAUTHORIZED', 'but not the listing');
  const made = await c.dfs(['token', 'create', '--read-only', '--name', 'dashboard']);
  t.equal(made.code, 0, `a read-only token for the page: ${made.stderr}`);
  const readOnly = made.stdout.toString().trim();

  // Opened on a follower, with the token, the page ends on the leader's /ui/ (the token out of the address).
  await page.goto(`http://${followerAddr}/ui/#token=${readOnly}`);
  t.equal(new URL(page.url()).host, leader.proc.addr, `the follower (${followerAddr}) sent the page to the leader (${leader.proc.addr})`);
  t.notMatch(page.url(), /token/, 'the page took the token out of the address');
  await page.waitForSelector('#conn[data-state="live"]');
  await page.evaluate(() => ((window as unknown as { loadedOnce: boolean }).loadedOnce = true));
  await page.waitForFunction(() => document.querySelectorAll('#chunkservers tr[data-state="live"]').length === 4);
  let now = await shown(page);
  t.same(now.states, { cs1: 'live', cs2: 'live', cs3: 'live', cs4: 'live' }, 'every chunkserver is shown, live');
  t.equal(await page.locator('#masters tr[data-role="leader"]').count(), 1, 'one master is shown leading');
  t.equal(await page.locator('#masters tr[data-master]').count(), 3, 'all three masters are shown');
  await page.waitForFunction(() => /can lose any 2 chunkservers/.test(document.getElementById('tolerance-cs')?.textContent ?? ''));
  t.match(await page.textContent('#tolerance-masters'), /2 of 3 masters needed, 3 up: can lose any 1 master/, 'the masters\' tolerance in words');
  t.ok(now.matrix.some((m) => m.startsWith('3/3:') && m.includes('ok')), `the chunk matrix has its healthy cell (${now.matrix.join(', ')})`);
  const racks = await page.evaluate(() => Object.fromEntries([...document.querySelectorAll<HTMLElement>('#chunkservers tr[data-server]')]
    .map((r) => [r.dataset.server!, r.querySelector('td.rack')?.textContent ?? ''])));
  t.same(racks, { cs1: 'r1', cs2: 'r1', cs3: 'r2', cs4: 'r2' }, 'each chunkserver is shown in its rack');
  const rackBars = await page.evaluate(() => [...document.querySelectorAll<HTMLElement>('#balance-racks [data-rack]')].map((r) => [r.dataset.rack!, Number(r.dataset.usedBytes), r.querySelector('.num')?.textContent ?? '']));
  t.same(rackBars.map((r) => r[0]), ['r1', 'r2'], 'the balance shows one bar per rack');
  t.ok(rackBars.every((r) => Number(r[1]) > 0 && /^(<?[\d.]+%) · [\d.]+ [KMG]?i?B$/.test(String(r[2]))), `each rack's bar says the share of its space used and the bytes (${rackBars.map((r) => r[2]).join(', ')})`);
  await page.waitForFunction(() => /a whole rack can be lost/.test(document.getElementById('tolerance-racks')?.textContent ?? ''));
  t.match(await page.textContent('#tolerance-racks'), 'any one of 2 racks (r1, r2)', 'the tolerance says a whole rack can be lost, in words');

  // The trash line follows a dfs rm (moved to the trash, not deleted).
  const trashShown = (): Promise<string> => page.evaluate(() => document.querySelector('#totals [data-key="trash"] dd')?.textContent ?? '');
  t.match(await trashShown(), /^0 files/, 'the trash is shown empty');
  t.equal((await c.dfs(['rm', '/top.txt'])).code, 0, 'dfs rm /top.txt');
  await page.waitForFunction(() => /^1 file ·/.test(document.querySelector('#totals [data-key="trash"] dd')?.textContent ?? ''));
  t.match(await trashShown(), '1 file · 4 B', 'after dfs rm the trash line shows the file it holds');
  await page.screenshot({ path: join(ARTIFACTS, '1-healthy.png'), fullPage: true });

  // The namespace browser: into /data, open the file, see each chunk's replicas.
  await page.click('a[data-path="/data"]');
  await page.click('a[data-path="/data/big.bin"]');
  await page.waitForFunction(() => document.querySelectorAll('#file-chunks tr[data-chunk]').length === 20);
  const before = await replicasShown(page);
  t.ok(before.every((r) => r.length === 3), 'every chunk of the file lists its 3 replicas');
  t.match(await page.textContent('#get-command'), 'dfs get /data/big.bin big.bin', 'the file offers the dfs get command');
  const victimIndex = [0, 1, 2, 3].sort((a, b) => before.filter((r) => r.includes(`cs${b + 1}`)).length - before.filter((r) => r.includes(`cs${a + 1}`)).length)[0]!;
  const victim = `cs${victimIndex + 1}`;
  await page.screenshot({ path: join(ARTIFACTS, '2-file.png'), fullPage: true });

  // Kill a chunkserver; watch the page, never reloading it.
  await c.kill(c.chunkservers[victimIndex]!);
  t.comment(`killed ${victim} (pid ${c.chunkservers[victimIndex]!.pid})`);
  const seen: Shown[] = [];
  let degradedShot = false;
  const deadline = Date.now() + 45_000;
  while (Date.now() < deadline) {
    now = await shown(page);
    seen.push(now);
    if (now.under > 0 && !degradedShot) {
      degradedShot = true;
      await page.screenshot({ path: join(ARTIFACTS, '3-degraded.png'), fullPage: true });
    }
    if (now.states[victim] === 'dead' && seen.some((s) => s.under > 0) && now.under === 0 && /can lose any 2 chunkservers/.test(now.tolerance)) break;
    await new Promise((r) => setTimeout(r, 200));
  }
  t.equal(now.states[victim], 'dead', `${victim} is shown dead`);
  t.comment(`${victim} was shown ${[...new Set(seen.map((s) => s.states[victim]))].join(', then ')}`);
  const peak = Math.max(...seen.map((s) => s.under));
  t.ok(peak > 0, `the under-replicated count rose (to ${peak})`);
  t.ok(seen.some((s) => s.copiesIn > 0), `the chunkservers' copy traffic showed copies in flight (up to ${Math.max(...seen.map((s) => s.copiesIn))})`);
  t.equal(now.under, 0, 'and fell back to 0 as copies ran');
  t.ok(seen.some((s) => /can lose any 1 chunkserver /.test(s.tolerance)), 'while copies ran, the tolerance said one chunkserver could be lost');
  t.ok(seen.some((s) => s.matrix.some((m) => m.startsWith('3/2:') && m.includes('warn'))), 'and the matrix showed the endangered cell (3 wanted, 2 live) in colour');
  t.match(now.tolerance, /can lose any 2 chunkservers/, 'healed: two chunkservers may be lost again');
  t.ok(Number(await page.getAttribute('#chart-under', 'data-peak')) > 0, 'the repair chart recorded the rise');
  // The under-replicated count reaches 0 as the last copies report; copies still in flight then
  // (balancing onto the servers left, or a copy whose report is on its way) end within seconds.
  const idle = /0 copies queued · 0 copying · [1-9]\d* done/;
  await page.waitForFunction((re) => new RegExp(re).test(document.querySelector('#repair-now')?.textContent ?? ''), idle.source, { timeout: 30_000 }).catch(() => undefined);
  t.match(await page.textContent('#repair-now'), idle, 'the repair line says the queue is empty and the copies done');
  await page.waitForFunction((v) => [...document.querySelectorAll('#file-chunks tr[data-chunk]')]
    .every((tr) => tr.querySelectorAll('[data-replica]').length === 3 && !tr.querySelector(`[data-replica="${v}"]`)), victim);
  t.pass(`the open file lists 3 replicas per chunk again, none on ${victim}`);
  await page.screenshot({ path: join(ARTIFACTS, '4-healed.png'), fullPage: true });
  t.equal(await page.evaluate(() => (window as unknown as { loadedOnce?: boolean }).loadedOnce), true, 'the page was never reloaded');

  // Readable on a phone: nothing wider than the screen but the tables, which scroll in place.
  await page.setViewportSize({ width: 390, height: 844 });
  await page.waitForTimeout(300);
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  t.ok(overflow <= 0, `on a 390 px wide screen the page does not scroll sideways (${overflow} px over)`);
  await page.screenshot({ path: join(ARTIFACTS, '5-phone.png'), fullPage: true });

  const total = [...pageBytes.values()].reduce((a, b) => a + b, 0);
  t.same([...pageBytes.keys()].sort(), ['/ui/', '/ui/dashboard.css', '/ui/dashboard.js'], 'the page is its three files, nothing from elsewhere');
  t.ok(total < MAX_PAGE_BYTES, `page weight ${total} bytes before compression (goal: under ${MAX_PAGE_BYTES})`);
  t.comment(`page weight: ${total} bytes (${[...pageBytes].map(([p, n]) => `${p} ${n}`).join(', ')})`);
  t.same(consoleErrors, [], 'no console error');

  // The leader dies: the page finds the new one by itself, still without a reload. Chromium logs
  // each failed poll of the dead master (and each NOT_LEADER) as a failed load; nothing else may appear.
  await page.setViewportSize({ width: 1280, height: 1000 });
  const old = await c.leader();
  consoleErrors.length = 0;
  await c.kill(old.proc);
  t.comment(`killed the leader m${old.index + 1} (${old.proc.addr})`);
  await page.waitForFunction((oldAddr) => {
    const where = document.getElementById('where')?.textContent ?? '';
    return document.getElementById('conn')?.dataset.state === 'live' && /leader \S+/.test(where) && !where.includes(`leader ${oldAddr}`);
  }, old.proc.addr, { timeout: 25_000 });
  const newLeader = await c.leader();
  t.match(await page.textContent('#where'), `leader ${newLeader.proc.addr}`, `the page polls the new leader, m${newLeader.index + 1}`);
  await page.waitForSelector(`#masters tr[data-master="m${old.index + 1}"][data-role="unknown"]`);
  t.pass(`the old leader m${old.index + 1} is shown unreachable`);
  t.match(await page.textContent(`#masters tr[data-master="m${old.index + 1}"] [data-last-contact]`), /s ago$/, 'with the time since it last answered');
  t.match(await page.textContent('#tolerance-masters'), /2 of 3 masters needed, 2 up: losing one more stops the cluster/, 'and the masters\' tolerance says so');
  t.equal(await page.evaluate(() => (window as unknown as { loadedOnce?: boolean }).loadedOnce), true, 'the page was never reloaded');
  await page.screenshot({ path: join(ARTIFACTS, '6-new-leader.png'), fullPage: true });
  t.same(consoleErrors.filter((e) => !/^Failed to load resource/.test(e)), [], 'no console error but the failed polls of masters that could not answer');
  if (t.passing()) return;
  for (const line of c.problems().slice(-40)) t.comment(line);
});
