/** The chunk store (one module per idea, see chunk-store.ts), as the rest of the chunkserver and its tests use it. */
export { ChunkStore, type ChunkStoreOptions } from './chunk-store.js';
export type { AppendWrite } from './append.js';
export { ChunkWriter, MAX_WRITES_IN_FLIGHT, SYNC_EVERY_BYTES, type StoredChunk } from './writer.js';
export { READ_BATCH_BYTES } from './reader.js';
export { alignedBuffer, DIRECT_ALIGN_BYTES, SlabPool, SLABS_PER_ARENA, WRITE_SLAB_BYTES } from './slabs.js';
