/**
 * Where load jobs are kept so that a master restart (or a new HA leader) finds them: one record
 * per job in the MetaStore under tag 0x23 (see mounts/keys.ts for the neighbouring tags), keyed
 * by the job id, which starts with its creation time in base 36 so keys sort by age.
 *
 * A record is the job's last checkpointed status. It is written when the job is submitted
 * (before the submitter hears of it), every few seconds while it runs, and when it ends; an
 * unfinished record found at start means the job was interrupted, and the master runs it again.
 */
import { Packr } from 'msgpackr';
import type { Logger } from '../../common/logging.js';
import type { MetaStore } from '../../meta/index.js';
import { loadJobStatusSchema } from '../../protocol/ufs-types.js';
import type { LoadJobStatus } from '../../protocol/ufs-types.js';

export const TAG_LOAD_JOB = 0x23;
/** Longest job id accepted from the store (ids we make are about 16 characters). */
const MAX_JOB_ID_BYTES = 64;

const packr = new Packr({ useRecords: false, mapsAsObjects: true });

export interface JobStore {
  /** Writes a job's status; resolves once durable. */
  save(status: LoadJobStatus): Promise<void>;
  remove(jobId: string): Promise<void>;
  /** Every stored job, oldest first. Unreadable records are skipped (and logged). */
  all(): Promise<LoadJobStatus[]>;
}

function jobKey(jobId: string): Buffer {
  return Buffer.concat([Buffer.of(TAG_LOAD_JOB), Buffer.from(jobId, 'utf8')]);
}

/** The job records of the master's MetaStore. */
export class MetaJobStore implements JobStore {
  readonly #store: MetaStore;
  readonly #log: Logger;

  constructor(store: MetaStore, log: Logger) {
    this.#store = store;
    this.#log = log;
  }

  async save(status: LoadJobStatus): Promise<void> {
    if (Buffer.byteLength(status.jobId, 'utf8') > MAX_JOB_ID_BYTES)
      throw new RangeError(`load job id longer than ${MAX_JOB_ID_BYTES} bytes`);
    await this.#store.put(jobKey(status.jobId), packr.pack(status));
  }

  async remove(jobId: string): Promise<void> {
    await this.#store.delete(jobKey(jobId));
  }

  async all(): Promise<LoadJobStatus[]> {
    const rows = await this.#store.scan({ prefix: Buffer.of(TAG_LOAD_JOB) });
    const out: LoadJobStatus[] = [];
    for (const row of rows) {
      let parsed;
      try {
        parsed = loadJobStatusSchema.safeParse(packr.unpack(row.value));
      } catch (err) {
        parsed = { success: false as const, error: err };
      }
      if (parsed.success) out.push(parsed.data);
      else
        this.#log.warn(
          { key: Buffer.from(row.key).subarray(1).toString('utf8') },
          'unreadable load job record skipped',
        );
    }
    return out;
  }
}
