/** What operation handlers share: the stores and the limits from `[s3_gateway]`. */
import type { Lister } from './listing.js';
import type { Multipart } from './multipart.js';
import type { GetPhaseObserver } from './metrics.js';
import type { SendBufferPool } from './send.js';
import type { ObjectStore } from './store.js';

export interface GatewayLimits {
  maxObjectBytes: number;
  maxPartBytes: number;
}

export interface HandlerDeps {
  store: ObjectStore;
  lister: Lister;
  multipart: Multipart;
  limits: GatewayLimits;
  region: string;
  /** Buffers GET responses are read into and sent from. */
  sendBuffers: SendBufferPool;
  /** Told how long each phase of a GET took. */
  getPhases?: GetPhaseObserver;
  /** How long a copy or complete may run before its 200 goes out and spaces keep it alive. */
  keepAliveAfterMs: number;
}

/** The owner every listing shows (the gateway has one namespace for all its users). */
export const OWNER_ID = 'strata';
export const STORAGE_CLASS = 'STANDARD';
/** Largest XML request document read (Delete of 1,000 keys, Complete of 10,000 parts). */
export const MAX_XML_BODY_BYTES = 2 * 1024 * 1024;
/** Most keys one DeleteObjects request may name (S3's limit). */
export const MAX_DELETE_KEYS = 1000;
/** Concurrent metadata reads while building a listing page. */
export const LIST_META_CONCURRENCY = 32;
