// The relations between limits (common/limits.ts): each is checked, the shipped settings pass,
// and settings that break one are refused with its name.
import t from 'tap';
import { DfsError } from '../../common/errors.js';
import {
  checkLimits, CHUNK_TIMEOUT_MS, LINK_RETRY_MS, MAX_HANDLE_ENTRY_BYTES, MAX_JSON_BODY_BYTES, MAX_REPORT_ENTRY_BYTES, MAX_REPORT_PAGE_CHUNKS, RELATIONS, WRITE_TOKEN_TTL_MS,
  type LimitSettings,
} from '../../common/limits.js';
import { REPAIR_DEFAULTS } from '../../master/repair/index.js';
import { MASTER_DEFAULTS } from '../../master/main.js';

const GOOD: Required<LimitSettings> = {
  heartbeatIntervalMs: 1000, deadTimeoutMs: MASTER_DEFAULTS.deadTimeoutMs, chunkTimeoutMs: CHUNK_TIMEOUT_MS, writeTokenTtlMs: WRITE_TOKEN_TTL_MS,
  copyTimeoutMs: REPAIR_DEFAULTS.copyTimeoutMs, copyReportSlackMs: MASTER_DEFAULTS.deadTimeoutMs, gcGraceMs: MASTER_DEFAULTS.gcGraceMs,
  connectionGraceMs: MASTER_DEFAULTS.connectionGraceMs, restartGraceMs: MASTER_DEFAULTS.restartGraceMs,
};

t.test('the shipped settings fit together', async (t) => {
  t.doesNotThrow(() => checkLimits(GOOD));
  t.doesNotThrow(() => checkLimits({}), 'the constants alone');
  for (const r of RELATIONS) t.ok(r.holds(GOOD), r.name);
});

t.test('the worst-case entry sizes are what JSON makes of the widest numbers', async (t) => {
  const n = Number.MAX_SAFE_INTEGER;
  t.equal(MAX_REPORT_ENTRY_BYTES, JSON.stringify({ handle: n, version: n, length: n }).length + 1);
  t.equal(MAX_HANDLE_ENTRY_BYTES, JSON.stringify(n).length + 1);
  const page = JSON.stringify({ chunks: Array.from({ length: MAX_REPORT_PAGE_CHUNKS }, () => ({ handle: n, version: n, length: n })) });
  t.ok(page.length < MAX_JSON_BODY_BYTES, `a page of the widest entries is ${page.length} bytes, under ${MAX_JSON_BODY_BYTES}`);
});

const BREAKS: [Partial<LimitSettings>, RegExp][] = [
  [{ heartbeatIntervalMs: 11_000 }, /heartbeatIntervalMs \* 3 <= deadTimeoutMs/],
  [{ writeTokenTtlMs: CHUNK_TIMEOUT_MS - 1 }, /writeTokenTtlMs >= chunkTimeoutMs/],
  [{ copyReportSlackMs: 1000 }, /copyReportSlackMs >= 2 \* heartbeatIntervalMs/],
  [{ copyReportSlackMs: 20_000 }, /copyReportSlackMs >= deadTimeoutMs/],
  [{ copyTimeoutMs: 0 }, /copyTimeoutMs > 0/],
  [{ gcGraceMs: -1 }, /gcGraceMs >= 0/],
  [{ connectionGraceMs: MASTER_DEFAULTS.deadTimeoutMs + 1 }, /connectionGraceMs <= deadTimeoutMs/],
  [{ connectionGraceMs: LINK_RETRY_MS - 1 }, /connectionGraceMs >= LINK_RETRY_MS/],
  [{ restartGraceMs: MASTER_DEFAULTS.deadTimeoutMs - 1 }, /restartGraceMs >= deadTimeoutMs/],
];

t.test('settings that break a relation are refused, naming it', async (t) => {
  const named = new Set<string>();
  for (const [bad, why] of BREAKS) {
    const err = (() => {
      try {
        checkLimits({ ...GOOD, ...bad });
      } catch (e) {
        return e;
      }
      return undefined;
    })();
    t.ok(err instanceof DfsError && err.code === 'INVALID_CONFIG', `${JSON.stringify(bad)} is refused`);
    t.match((err as Error).message, why);
    for (const r of RELATIONS) if ((err as Error).message.includes(r.name)) named.add(r.name);
  }
  const withSettings = RELATIONS.filter((r) => r.uses.length > 0).map((r) => r.name);
  t.same([...named].sort(), withSettings.sort(), 'every relation between settings has a case that breaks it');
  t.doesNotThrow(() => checkLimits({ heartbeatIntervalMs: 60_000 }), 'a relation is checked only where all its settings are known');
});
