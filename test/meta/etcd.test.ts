// Runs the MetaStore conformance suite against the etcd engine on a real single-member etcd
// (default limits: 128 operations per transaction, so big transactions take the redo-log path),
// each test on its own key prefix; reopen is a new store on the same prefix.
import { randomBytes } from 'node:crypto';
import { after, before } from 'node:test';
import { EtcdStore, createEtcdClient } from '../../src/meta/etcd/index.js';
import { requireTools } from '../helpers/ci.js';
import { ETCD_BIN, EtcdCluster } from '../helpers/etcd.js';
import { runMetaStoreConformance } from './conformance.js';

const skip = requireTools(ETCD_BIN);
let etcd: EtcdCluster | undefined;
const prefixes = new WeakMap<object, string>();

if (skip === undefined) {
  before(async () => {
    etcd = await EtcdCluster.start(undefined);
  });
  after(async () => {
    await etcd?.stop();
  });

  const open = async (prefix: string): Promise<EtcdStore> => {
    if (etcd === undefined) throw new Error('etcd not started');
    const client = createEtcdClient({ endpoints: etcd.endpoints });
    const store = await EtcdStore.open({ client, prefix, ownsClient: true });
    prefixes.set(store, prefix);
    return store;
  };

  runMetaStoreConformance({
    name: 'etcd',
    open: async () => open(`/strata-test/${randomBytes(6).toString('hex')}/`),
    reopen: async (_t, store) => {
      const prefix = prefixes.get(store);
      if (prefix === undefined) throw new Error('unknown store');
      await store.close();
      return open(prefix);
    },
  });
} else {
  runMetaStoreConformance({
    name: `etcd (skipped: ${skip})`,
    open: async (t) => {
      t.skip(skip);
      throw new Error(skip);
    },
  });
}
