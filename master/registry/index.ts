// The public surface of master/registry: the leader's volatile knowledge of chunkservers and replicas.
export { Registry } from './registry.js';
export { GARBAGE_CHECKS_PER_CALL } from './garbage.js';
