/**
 * Where the engine keeps things under its prefix in etcd:
 *
 *   <prefix>d/<key>            the store's entries (MetaStore keys, raw bytes after "d/")
 *   <prefix>x/commit           written by every committing transaction (a coarse validation checks
 *                              that nothing committed since its snapshot)
 *   <prefix>x/intent           a big transaction committed but not fully applied yet (its redo log
 *                              id); while it exists no other transaction commits and no snapshot
 *                              is read
 *   <prefix>x/redo/<id>/<n>    the redo log of big transaction <id>, in chunks
 */
import { prefixEnd } from '../bytes.js';

export class EtcdLayout {
  readonly prefix: Buffer;
  readonly data: Buffer;
  /** First key after every data key (exclusive end of the data range). */
  readonly dataEnd: Buffer;
  readonly commitKey: Buffer;
  readonly intentKey: Buffer;

  constructor(prefix: string) {
    this.prefix = Buffer.from(prefix, 'utf8');
    this.data = Buffer.concat([this.prefix, Buffer.from('d/')]);
    this.dataEnd = Buffer.from(prefixEnd(this.data) as Uint8Array);
    this.commitKey = Buffer.concat([this.prefix, Buffer.from('x/commit')]);
    this.intentKey = Buffer.concat([this.prefix, Buffer.from('x/intent')]);
  }

  toEtcd(key: Uint8Array): Buffer {
    return Buffer.concat([this.data, key]);
  }

  fromEtcd(k: Buffer): Buffer {
    return k.subarray(this.data.length);
  }

  /** The etcd end key of an interval end (undefined = end of the data range). */
  endToEtcd(hi: Uint8Array | undefined): Buffer {
    return hi === undefined ? this.dataEnd : this.toEtcd(hi);
  }

  redoPrefix(txnId: string): Buffer {
    return Buffer.concat([this.prefix, Buffer.from(`x/redo/${txnId}/`)]);
  }

  redoKey(txnId: string, seq: number): Buffer {
    return Buffer.concat([this.redoPrefix(txnId), Buffer.from(String(seq).padStart(8, '0'))]);
  }
}
