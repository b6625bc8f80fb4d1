// Two masters on a three-member etcd (loopback, not network namespaces): each etcd member in turn
// is killed with SIGKILL and restarted while the client library creates directories. Proves the
// masters ride through losing any one member (etcd's leader included): no client call fails,
// every acknowledged directory is there afterwards, and one master leads at the end.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { MasterCalls } from '../../src/protocol/index.js';
import { requireTools } from '../helpers/ci.js';
import { ETCD_BIN, EtcdCluster } from '../helpers/etcd.js';
import { waitFor } from '../helpers/wait.js';
import { HaCluster } from './ha-cluster.js';

const skip = requireTools(ETCD_BIN);
/** Acknowledged creates required while each member is down (writes go on without it). */
const CREATES_PER_OUTAGE = 10;

describe('three-member etcd', { skip, timeout: 150_000 }, () => {
  test('losing any one etcd member (SIGKILL) stops nothing and loses nothing', async (t) => {
    const etcd = await EtcdCluster.start(t, { members: 3 });
    // etcd refuses leases under 1.5 election timeouts (1 s with three members): the default TTL.
    const ha = await HaCluster.start(t, { masters: 2, etcd, leaseTtl: '3s' });
    await ha.waitLeader(undefined, 30_000);
    const fs = ha.fileSystem();
    await fs.mkdir('/m');

    let stop = false;
    const acked: string[] = [];
    const failures: string[] = [];
    const loop = (async () => {
      for (let n = 0; !stop; n++) {
        try {
          await fs.mkdir(`/m/d${n}`);
          acked.push(`d${n}`);
        } catch (err) {
          failures.push(`/m/d${n}: ${(err as { code?: string }).code ?? '?'} ${(err as Error).message}`);
        }
      }
    })();
    try {
      for (const member of etcd.members) {
        await etcd.stopMember(member, 'SIGKILL');
        const before = acked.length;
        await waitFor(
          `creates with etcd ${member.name} down`,
          () => acked.length >= before + CREATES_PER_OUTAGE,
          40_000,
          50,
        );
        t.diagnostic(`etcd ${member.name} down: ${acked.length - before} creates acknowledged`);
        await etcd.restartMember(member);
      }
    } finally {
      stop = true;
      await loop;
    }
    assert.deepEqual(failures, [], 'client library calls failed');
    const admin = ha.client();
    const present = new Set<string>();
    let startAfter: string | undefined;
    for (;;) {
      const page = await admin.call(MasterCalls.List, {
        path: '/m',
        limit: 1000,
        ...(startAfter === undefined ? {} : { startAfter }),
      });
      for (const e of page.entries) present.add(e.name);
      if (page.nextStartAfter === undefined) break;
      startAfter = page.nextStartAfter;
    }
    assert.deepEqual(
      acked.filter((d) => !present.has(d)),
      [],
      'acknowledged directories lost',
    );
    t.diagnostic(`${acked.length} directories acknowledged, all present`);
    await ha.waitLeader(undefined, 30_000);
  });
});
