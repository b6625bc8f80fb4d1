/** The etcd MetaStore engine: the store, its client factory and its limits. */
export { EtcdStore } from './etcd-store.js';
export type { EtcdFence, EtcdStoreOptions } from './etcd-store.js';
export { createEtcdClient } from './client.js';
export type { EtcdClientConfig } from './client.js';
export type { EtcdObserver, EtcdOp } from './transport.js';
export { EtcdLayout } from './layout.js';
export * from './limits.js';
