// common/checksum.ts: per-block xxHash64, streaming BlockHasher, whole-chunk checksum.
// Subtests run in order: the first runs before initChecksums() on purpose.
import t from 'tap';
import { BLOCK_SIZE_BYTES, BlockHasher, chunkChecksum, hashBlock, initChecksums, streamHash } from '../../common/checksum.js';
import { mulberry32 as rng } from '../helpers/rng.js';

const BS = BLOCK_SIZE_BYTES;

function pattern(n: number, seed: number): Buffer {
  const r = rng(seed);
  const b = Buffer.allocUnsafe(n);
  for (let i = 0; i < n; i++) b[i] = Math.floor(r() * 256);
  return b;
}

/** The reference: hash every 64 KiB block (the last may be short) in one call each. */
function reference(data: Uint8Array): bigint[] {
  const out: bigint[] = [];
  for (let o = 0; o < data.length; o += BS) out.push(hashBlock(data.subarray(o, Math.min(o + BS, data.length))));
  return out;
}

function hashInPieces(data: Buffer, sizes: number[]): BlockHasher {
  const h = new BlockHasher();
  let off = 0;
  let i = 0;
  while (off < data.length) {
    const n = Math.min(sizes[i++ % sizes.length]!, data.length - off);
    h.update(data.subarray(off, off + n));
    off += n;
  }
  return h;
}

t.test('hashing before initChecksums() fails loudly', async (t) => {
  t.throws(() => hashBlock(new Uint8Array(1)), /initChecksums\(\) was not awaited/);
  t.throws(() => chunkChecksum([1n]), /initChecksums\(\) was not awaited/);
  const h = new BlockHasher();
  t.throws(() => h.update(new Uint8Array(BS)), /initChecksums\(\) was not awaited/, 'a whole block is hashed at once');
});

t.test('initChecksums is idempotent', async (t) => {
  await initChecksums();
  const a = hashBlock(Buffer.from('abc'));
  await initChecksums();
  t.equal(hashBlock(Buffer.from('abc')), a, 'same hash after a second init');
  await Promise.all([initChecksums(), initChecksums()]);
  t.equal(hashBlock(Buffer.from('abc')), a);
});

t.test('hashBlock', async (t) => {
  t.equal(BS, 65536);
  t.type(hashBlock(new Uint8Array(0)), 'bigint');
  // published xxHash64 (seed 0) test vectors
  t.equal(hashBlock(new Uint8Array(0)), 0xef46db3751d8e999n, 'empty input');
  t.equal(hashBlock(Buffer.from('a')), 0xd24ec4f1a98c6e5bn, '"a"');
  t.equal(hashBlock(Buffer.from('abc')), 0x44bc2cf5ad770999n, '"abc"');
  const data = pattern(3 * BS, 1);
  const view = data.subarray(BS + 17, 2 * BS + 17);
  t.equal(hashBlock(view), hashBlock(Buffer.from(view)), 'a view at an offset hashes like a copy of its bytes');
  t.equal(hashBlock(new Uint8Array(view)), hashBlock(view), 'Uint8Array and Buffer agree');
  const flipped = Buffer.from(view);
  flipped[1000]! ^= 1;
  t.not(hashBlock(flipped), hashBlock(view), 'one bit changes the hash');
  t.not(hashBlock(new Uint8Array(2)), hashBlock(new Uint8Array(1)), 'length matters, even for zeros');
});

t.test('BlockHasher in arbitrary splits matches hashing each block at once', async (t) => {
  const sizes = [0, 1, BS - 1, BS, BS + 1, 2 * BS, 2 * BS + 1, 5 * BS - 3, 7 * BS + 12345];
  const splits: Array<[string, number[]]> = [
    ['1 byte', [1]],
    ['65535', [BS - 1]],
    ['65536', [BS]],
    ['65537', [BS + 1]],
    ['mixed odd', [1, 65535, 65537, 3, 131077, 7]],
    ['three blocks', [3 * BS]],
    ['whole', [Number.MAX_SAFE_INTEGER]],
    ['primes', [7919, 104729, 13]],
  ];
  for (const size of sizes) {
    const data = pattern(size, size + 5);
    const want = reference(data);
    t.equal(want.length, Math.ceil(size / BS), `${size}: ceil(size/64KiB) blocks`);
    for (const [name, split] of splits) {
      const h = hashInPieces(data, split);
      t.equal(h.bytes, size, `${size}/${name}: byte count`);
      t.same([...h.finish()], want, `${size}/${name}: block hashes`);
    }
    // random splits, including empty updates
    const r = rng(size + 99);
    for (let trial = 0; trial < 5; trial++) {
      const h = new BlockHasher();
      let off = 0;
      while (off < size) {
        const n = Math.min(size - off, Math.floor(r() * r() * 3 * BS));
        h.update(data.subarray(off, off + n));
        off += n;
      }
      h.update(new Uint8Array(0));
      t.same([...h.finish()], want, `${size}: random split #${trial}`);
    }
  }
});

t.test('BlockHasher does not keep references to the caller\u2019s buffers', async (t) => {
  const data = pattern(2 * BS + 100, 3);
  const want = reference(data);
  const h = new BlockHasher();
  // feed partial blocks through one reused buffer that is overwritten after each update
  const scratch = Buffer.alloc(1000);
  for (let off = 0; off < data.length; off += 1000) {
    const n = Math.min(1000, data.length - off);
    data.copy(scratch, 0, off, off + n);
    h.update(scratch.subarray(0, n));
    scratch.fill(0xee);
  }
  t.same([...h.finish()], want);
});

t.test('BlockHasher.finish', async (t) => {
  const empty = new BlockHasher();
  t.equal(empty.finish().length, 0, 'no bytes, no blocks');
  t.ok(empty.finish() instanceof BigUint64Array);
  const exact = new BlockHasher();
  exact.update(new Uint8Array(2 * BS));
  t.equal(exact.finish().length, 2, 'an exact multiple has no trailing empty block');
  const partial = new BlockHasher();
  partial.update(new Uint8Array(2 * BS + 1));
  const hs = partial.finish();
  t.equal(hs.length, 3);
  t.equal(hs[2], hashBlock(new Uint8Array(1)), 'the short last block is hashed by its own length');
});

t.test('chunkChecksum', async (t) => {
  const hs = reference(pattern(4 * BS + 5, 8));
  const sum = chunkChecksum(hs);
  t.match(sum, /^[0-9a-f]{16}$/, '16 lower-case hex digits');
  t.equal(chunkChecksum(BigUint64Array.from(hs)), sum, 'array and BigUint64Array agree');
  t.equal(chunkChecksum([...hs]), sum, 'deterministic');

  // order sensitive
  const swapped = [...hs];
  [swapped[0], swapped[1]] = [swapped[1]!, swapped[0]!];
  t.not(chunkChecksum(swapped), sum, 'swapping two blocks changes it');
  t.not(chunkChecksum([...hs].reverse()), sum, 'reversing changes it');
  t.not(chunkChecksum([1n, 2n]), chunkChecksum([2n, 1n]), 'two-element order');
  t.not(chunkChecksum(hs.slice(0, -1)), sum, 'dropping a block changes it');
  t.not(chunkChecksum([...hs, 0n]), sum, 'appending a zero hash changes it');

  // it is a hash of the little-endian block hashes
  const bytes = Buffer.alloc(hs.length * 8);
  hs.forEach((h, i) => bytes.writeBigUInt64LE(h, i * 8));
  t.equal(chunkChecksum(hs), hashBlock(bytes).toString(16).padStart(16, '0'), 'xxHash64 over the block hashes');

  const small = chunkChecksum([]);
  t.equal(small, hashBlock(new Uint8Array(0)).toString(16).padStart(16, '0'), 'empty chunk');
  t.equal(small.length, 16);

  // a view into a larger BigUint64Array uses only its own elements
  const big = BigUint64Array.from([99n, ...hs, 77n]);
  t.equal(chunkChecksum(big.subarray(1, 1 + hs.length)), sum, 'subarray view');

  // same bytes in a different split give the same checksum; different bytes do not
  const data = pattern(3 * BS + 1, 4);
  const a = chunkChecksum(hashInPieces(data, [1, 65535]).finish());
  const b = chunkChecksum(hashInPieces(data, [65537]).finish());
  t.equal(a, b);
  const other = Buffer.from(data);
  other[2 * BS]! ^= 0x80;
  t.not(chunkChecksum(hashInPieces(other, [65537]).finish()), a, 'one flipped bit anywhere changes the chunk checksum');

  // zero-padded to 16 digits even for small values: find a block-hash list whose checksum starts with 0
  let padded: string | undefined;
  for (let i = 0n; i < 5000n && !padded; i++) {
    const s = chunkChecksum([i]);
    if (s.startsWith('0')) padded = s;
  }
  t.ok(padded, 'found a checksum with a leading zero');
  t.equal(padded?.length, 16, 'leading zeros are kept');
});

t.test('streamHash: the same digest however the bytes are split, the xxHash64 of the whole, and any change shows', async (t) => {
  await initChecksums();
  const data = pattern(3 * BS + 777, 4242);
  const whole = hashBlock(data).toString(16).padStart(16, '0');
  for (const split of [[data.length], [1, 2, 3], [BS - 1, 2], [100_000, 7]]) {
    const h = streamHash();
    for (let off = 0, i = 0; off < data.length; i++) {
      const n = Math.min(split[i % split.length]!, data.length - off);
      h.update(data.subarray(off, off + n));
      off += n;
    }
    t.equal(h.digest(), whole, `split ${JSON.stringify(split)}`);
  }
  const empty = streamHash();
  t.equal(empty.digest(), hashBlock(new Uint8Array(0)).toString(16).padStart(16, '0'), 'no bytes: the hash of empty input');
  const changed = Buffer.from(data);
  changed[data.length - 1]! ^= 1;
  const h = streamHash();
  h.update(changed);
  t.not(h.digest(), whole, 'one flipped bit changes the digest');
});
