// The public surface of master/repair: the leader's re-replication and balancing planner.
export { RepairScheduler } from './scheduler.js';
export { REPAIR_DEFAULTS, type RepairLimits } from './limits.js';
export { SCAN_STEP } from './steps.js';
export type { RepairScan } from './context.js';
