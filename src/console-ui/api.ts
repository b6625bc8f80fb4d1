/**
 * The master's JSON API as the console sees it: the shapes it reads (a subset of what the master
 * sends) and the two ways it talks — GET for data, POST with the admin token for actions.
 */

export interface ConsoleInfo {
  clusterId: string;
  version: string;
  actionsEnabled: boolean;
  refreshMs: number;
  sampleIntervalMs: number;
}

export interface TierTotals {
  storageType: string;
  capacityBytes: number;
  usedBytes: number;
  availableBytes: number;
}

export interface Overview {
  clusterId: string;
  version: string;
  role: string;
  rpcAddress: string;
  startedAtMs: number;
  uptimeMs: number;
  capacityBytes: number;
  usedBytes: number;
  availableBytes: number;
  tiers: TierTotals[];
  workers: Record<string, number>;
  namespace: { files: number; dirs: number; symlinks?: number; blocks: number };
  cachedBlocks: number;
  replicas: number;
  replication: { needed: number; inflight: number; missing: number };
  leasesOpen: number;
  metaStore: { engine: string; revision: number; sizeBytes?: number };
  cache: {
    inodes: number;
    dentries: number;
    inodeHits: number;
    inodeMisses: number;
    dentryHits: number;
    dentryMisses: number;
  };
}

export interface MasterInfo {
  address: string;
  webAddress?: string;
  role: string;
}

export interface TierUsage {
  storageType: string;
  dir: string;
  capacityBytes: number;
  usedBytes: number;
  availableBytes: number;
  blocks: number;
  highWatermark: number;
  lowWatermark: number;
}

export interface WorkerAddress {
  workerId: string;
  hostname: string;
  rpcPort: number;
  webPort: number;
}

export interface WorkerInfo {
  address: WorkerAddress;
  state: string;
  tiers: TierUsage[];
  capacityBytes: number;
  usedBytes: number;
  availableBytes: number;
  blocks: number;
  lastHeartbeatMs: number;
  registeredAtMs: number;
  version: string;
}

export type FileType = 'file' | 'dir' | 'symlink';

export interface FileStatus {
  id: number;
  path: string;
  name: string;
  type: FileType;
  size: number;
  mode: number;
  uid: number;
  gid: number;
  mtimeMs: number;
  blockSize: number;
  replicas: number;
  storageType: string;
  ttlMs: number;
  ttlAction: string;
  state: string;
  target?: string;
  children?: number;
  cachedBytes?: number;
  ufsPath?: string;
}

export interface BlockLocation {
  blockId: number;
  offset: number;
  length: number;
  workers: { workerId: string; address: string; storageType: string }[];
}

export interface BrowseResult {
  status: FileStatus;
  entries?: FileStatus[];
  nextStartAfter?: string;
  blocks?: BlockLocation[];
}

export interface Alert {
  id: string;
  severity: 'critical' | 'warning' | 'info';
  title: string;
  detail: string;
}

export interface Sample {
  tMs: number;
  opsPerSec: number;
  errorsPerSec: number;
  workerCallsPerSec: number;
  readBytesPerSec: number;
  writeBytesPerSec: number;
  replicationBytesPerSec: number;
  hitRatio: number | null;
  blockReadsPerSec: number;
  metaHitRatio: number | null;
  workersScraped: number;
  workersAsked: number;
}

export interface History {
  intervalMs: number;
  capacity: number;
  samples: Sample[];
}

/** A UFS mount as /api/mounts lists it: secret option values read "***". */
export interface MountInfo {
  mountId: number;
  path: string;
  uri: string;
  options: Record<string, string>;
  writeType: string;
  readVerifyUfs: boolean;
  autoCache: boolean;
  ttlMs: number;
  ttlAction: string;
  /** 0: the client default. */
  replicas: number;
  /** 0: the client default. */
  blockSize: number;
  storageType?: string;
  readOnly: boolean;
  createdAtMs: number;
}

export interface MountsPage {
  total: number;
  offset: number;
  limit: number;
  mounts: MountInfo[];
}

export interface LoadJob {
  jobId: string;
  path: string;
  state: 'scanning' | 'running' | 'completed' | 'failed' | 'cancelled';
  totalFiles: number;
  totalBytes: number;
  doneFiles: number;
  doneBytes: number;
  loadedBytes: number;
  failedBlocks: number;
  startedAtMs: number;
  endedAtMs?: number;
  /** When a master ran it again after a restart or failover. */
  resumedAtMs?: number;
  error?: string;
}

export interface JobsPage {
  total: number;
  offset: number;
  limit: number;
  byState: Record<string, number>;
  jobs: LoadJob[];
}

/** An answer other than 2xx, with the master's error code and message. */
export class ApiError extends Error {
  readonly status: number;
  readonly code: string;
  constructor(status: number, code: string, message: string) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

/** Deadline of one request: a master that does not answer shows as unreachable, not as a hang. */
const REQUEST_TIMEOUT_MS = 10_000;

async function parse<T>(res: Response): Promise<T> {
  const text = await res.text();
  let body: unknown;
  try {
    body = text === '' ? {} : JSON.parse(text);
  } catch {
    throw new ApiError(res.status, 'BAD_RESPONSE', `HTTP ${res.status}: not JSON`);
  }
  if (!res.ok) {
    const e = (body as { error?: { code?: string; message?: string } }).error;
    throw new ApiError(res.status, e?.code ?? `HTTP_${res.status}`, e?.message ?? `HTTP ${res.status}`);
  }
  return body as T;
}

export async function getJson<T>(path: string): Promise<T> {
  const res = await fetch(path, {
    headers: { accept: 'application/json' },
    signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
  });
  return parse<T>(res);
}

/** POSTs an action; the token, when given, goes in the Authorization header. */
export async function postAction<T>(path: string, body: unknown, token: string | undefined): Promise<T> {
  const headers: Record<string, string> = { 'content-type': 'application/json', accept: 'application/json' };
  if (token !== undefined && token !== '') headers.authorization = `Bearer ${token}`;
  const res = await fetch(path, {
    method: 'POST',
    headers,
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
  });
  return parse<T>(res);
}
