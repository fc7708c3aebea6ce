/** The chunk store: one module per idea, gathered here for the rest of the chunkserver. */
export { ChunkStore, type ChunkStoreOptions } from './chunk-store.js';
export { ChunkWriter, MAX_WRITES_IN_FLIGHT, SYNC_EVERY_BYTES, type ChunkWriterOptions, type StoredChunk } from './writer.js';
export { ChunkReader, MAX_POOLED_BATCHES, READ_BATCH_BYTES, readChunkMeta } from './reader.js';
export { alignedBuffer, DIRECT_ALIGN_BYTES, MAX_IDLE_ARENAS, SlabPool, SLABS_PER_ARENA, WRITE_SLAB_BYTES } from './slabs.js';
export { ChangeLog } from './changes.js';
