export * from './types.js';
export * as MasterCalls from './master-calls.js';
export * as WorkerCalls from './worker-calls.js';
