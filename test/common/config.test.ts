// common/config.ts: parseSize, parseAddr, parseAddrList, formatBytes.
import t from 'tap';
import { DEFAULT_BASE_PORT, DEFAULT_MASTERS, formatBytes, parseAddr, parseAddrList, parseSize } from '../../common/config.js';
import { DfsError } from '../../common/errors.js';

const KiB = 1024;
const MiB = 1024 ** 2;
const GiB = 1024 ** 3;
const TiB = 1024 ** 4;

function errorOf(fn: () => unknown): DfsError | undefined {
  try {
    fn();
  } catch (err) {
    return err as DfsError;
  }
  return undefined;
}

t.test('defaults', async (t) => {
  t.equal(DEFAULT_BASE_PORT, 9400);
  t.ok(DEFAULT_MASTERS.length >= 1, 'at least one default master');
  t.equal(DEFAULT_MASTERS[0], `127.0.0.1:${DEFAULT_BASE_PORT}`, 'the first master is on the base port');
  t.same(parseAddrList(DEFAULT_MASTERS.join(',')), DEFAULT_MASTERS, 'the defaults parse as an address list');
  t.equal(new Set(DEFAULT_MASTERS).size, DEFAULT_MASTERS.length, 'no duplicates');
});

t.test('parseSize: numbers', async (t) => {
  t.equal(parseSize(0), 0);
  t.equal(parseSize(1), 1);
  t.equal(parseSize(64 * MiB), 64 * MiB);
  t.equal(parseSize(Number.MAX_SAFE_INTEGER), Number.MAX_SAFE_INTEGER);
  for (const bad of [-1, 1.5, NaN, Infinity, -Infinity, Number.MAX_SAFE_INTEGER + 1, 2 ** 64]) {
    t.throws(() => parseSize(bad), { name: 'DfsError', code: 'INVALID_ARGUMENT', message: /size must be a non-negative whole number of bytes/ }, `number ${bad}`);
  }
  t.throws(() => parseSize(-5, 'chunk size'), { code: 'INVALID_ARGUMENT', message: /^chunk size must be/ }, 'names the setting');
});

t.test('parseSize: strings with and without units', async (t) => {
  const cases: Array<[string, number]> = [
    ['0', 0],
    ['1', 1],
    ['1048576', MiB],
    ['00012', 12],
    ['7b', 7],
    ['7B', 7],
    ['4k', 4 * KiB],
    ['4K', 4 * KiB],
    ['4kb', 4 * KiB],
    ['4KiB', 4 * KiB],
    ['4kib', 4 * KiB],
    ['64M', 64 * MiB],
    ['64m', 64 * MiB],
    ['64MB', 64 * MiB],
    ['64MiB', 64 * MiB],
    ['64mib', 64 * MiB],
    ['1G', GiB],
    ['1GB', GiB],
    ['1GiB', GiB],
    ['1gib', GiB],
    ['2T', 2 * TiB],
    ['2TB', 2 * TiB],
    ['2TiB', 2 * TiB],
    [' 64MiB ', 64 * MiB],
    ['64 MiB', 64 * MiB],
    ['64\tMiB', 64 * MiB],
    ['\n1k\n', KiB],
    ['0GiB', 0],
    ['8191T', 8191 * TiB],
  ];
  for (const [raw, want] of cases) t.equal(parseSize(raw), want, JSON.stringify(raw));
});

t.test('parseSize: malformed strings', async (t) => {
  for (const raw of ['', ' ', 'abc', 'MiB', '1.5M', '1,024', '1_024', '-1', '+1', '1e6', '0x10', '10 M iB', '1kk', '1p', '1PiB', '1mi', '1ki', '1 m b', 'Infinity', 'NaN', '64MiB!', '1b2']) {
    const err = errorOf(() => parseSize(raw));
    t.ok(err instanceof DfsError, `${JSON.stringify(raw)} throws a DfsError`);
    t.equal(err?.code, 'INVALID_ARGUMENT', `${JSON.stringify(raw)} is INVALID_ARGUMENT`);
    t.equal(err?.status, 400);
    t.match(err?.message, /is not a size \(e\.g\. 1048576, 64MiB, 1GiB\)/, `${JSON.stringify(raw)} message explains`);
  }
  const err = errorOf(() => parseSize('lots', '--chunk-size'));
  t.equal(err?.message, "--chunk-size: 'lots' is not a size (e.g. 1048576, 64MiB, 1GiB)");
});

t.test('parseSize: too large', async (t) => {
  for (const raw of ['9007199254740992', '99999999999999999999', '8192T', '8388608TiB', '9007199254740991k']) {
    t.throws(() => parseSize(raw, 'limit'), { code: 'INVALID_ARGUMENT', message: `limit: '${raw}' is too large` }, raw);
  }
  t.equal(parseSize('9007199254740991'), Number.MAX_SAFE_INTEGER, 'largest safe integer still fits');
});

t.test('parseAddr: valid', async (t) => {
  const cases: Array<[string, string, number]> = [
    ['127.0.0.1:9400', '127.0.0.1', 9400],
    ['localhost:1', 'localhost', 1],
    ['example.com:65535', 'example.com', 65535],
    ['my-host.internal:8080', 'my-host.internal', 8080],
    ['A:80', 'A', 80],
    ['h:00080', 'h', 80],
  ];
  for (const [raw, host, port] of cases) t.same(parseAddr(raw), { host, port }, raw);
  t.same(parseAddr('0.0.0.0:0', 'listen', true), { host: '0.0.0.0', port: 0 }, 'port 0 when allowAnyPort');
  t.same(parseAddr('h:65535', 'listen', true), { host: 'h', port: 65535 });
  t.same(parseAddr('h'.repeat(253) + ':1'), { host: 'h'.repeat(253), port: 1 }, '253-character host');
});

t.test('parseAddr: invalid', async (t) => {
  const bad = [
    '',
    'localhost',
    ':9400',
    'localhost:',
    'localhost:0',
    'localhost:65536',
    'localhost:99999',
    'localhost:123456',
    'localhost:-1',
    'localhost:+1',
    'localhost:80a',
    'localhost:8 0',
    ' localhost:80',
    'localhost:80 ',
    'http://localhost:80',
    'localhost:80/',
    'user@host:80',
    'host_name:80',
    '[::1]:80',
    '::1:80',
    'a:b:80',
    'h'.repeat(254) + ':1',
    'hôst:80',
  ];
  for (const raw of bad) {
    const err = errorOf(() => parseAddr(raw, 'master'));
    t.ok(err instanceof DfsError, `${JSON.stringify(raw)} throws a DfsError`);
    t.equal(err?.code, 'INVALID_ARGUMENT', `${JSON.stringify(raw)} is INVALID_ARGUMENT`);
    t.equal(err?.message, `master: '${raw}' is not host:port`, `${JSON.stringify(raw)} message`);
  }
  t.throws(() => parseAddr('h:0'), { code: 'INVALID_ARGUMENT', message: "address: 'h:0' is not host:port" }, 'default label, port 0 refused');
  t.throws(() => parseAddr('h:65536', 'listen', true), { code: 'INVALID_ARGUMENT' }, 'allowAnyPort still caps at 65535');
});

t.test('parseAddrList', async (t) => {
  t.same(parseAddrList('a:1'), ['a:1']);
  t.same(parseAddrList('a:1,b:2,c:3'), ['a:1', 'b:2', 'c:3']);
  t.same(parseAddrList(' a:1 , b:2 ,c:3 '), ['a:1', 'b:2', 'c:3'], 'entries are trimmed');
  t.same(parseAddrList('a:1,,b:2,'), ['a:1', 'b:2'], 'empty entries are skipped');
  t.same(parseAddrList('a:1,a:1'), ['a:1', 'a:1'], 'duplicates are kept as given');
  for (const raw of ['', ',', ' , ,', '   ']) {
    t.throws(() => parseAddrList(raw), { name: 'DfsError', code: 'INVALID_ARGUMENT', message: 'address list is empty' }, JSON.stringify(raw));
  }
  t.throws(() => parseAddrList('', '--masters'), { message: '--masters is empty' });
  t.throws(() => parseAddrList('a:1,b', '--masters'), { code: 'INVALID_ARGUMENT', message: "--masters: 'b' is not host:port" }, 'one bad entry fails the list');
  t.throws(() => parseAddrList('a:1,b:0'), { code: 'INVALID_ARGUMENT', message: "address list: 'b:0' is not host:port" }, 'port 0 is not a peer address');
  t.throws(() => parseAddrList('a:1;b:2'), { code: 'INVALID_ARGUMENT' }, 'only commas separate');
});

t.test('formatBytes', async (t) => {
  const cases: Array<[number, string]> = [
    [0, '0 B'],
    [1, '1 B'],
    [1023, '1023 B'],
    [1024, '1.0 KiB'],
    [1536, '1.5 KiB'],
    [10 * KiB, '10.0 KiB'],
    [99 * KiB, '99.0 KiB'],
    [100 * KiB, '100 KiB'],
    [1000 * KiB, '1000 KiB'],
    [MiB, '1.0 MiB'],
    [64 * MiB, '64.0 MiB'],
    [512 * MiB, '512 MiB'],
    [GiB, '1.0 GiB'],
    [1.25 * GiB, '1.3 GiB'],
    [TiB, '1.0 TiB'],
    [1024 * TiB, '1.0 PiB'],
    [1024 * 1024 * TiB, '1024 PiB'],
  ];
  for (const [n, want] of cases) t.equal(formatBytes(n), want, `${n}`);
});

t.test('formatBytes never shows 1024 of a unit when a larger unit exists', async (t) => {
  t.equal(formatBytes(MiB - 1), '1.0 MiB', 'one byte under 1 MiB');
  t.equal(formatBytes(GiB - 1), '1.0 GiB', 'one byte under 1 GiB');
  t.notMatch(formatBytes(102349), /^100\.0 /, 'no "100.0" with a decimal when >= 100 prints without one');
});
