/**
 * Every limit and default of the UFS engines, named once. Mount options (`-c key=value`, see
 * options.ts) override the ones users may need to tune; docs/ufs.md explains each.
 */

const KiB = 1024;
const MiB = 1024 * KiB;
const GiB = 1024 * MiB;

/** Largest page `list` returns (S3's own page limit). */
export const UFS_LIST_PAGE_MAX = 1000;

/** Deadline of opening one connection to the UFS (`ufs.connect_timeout`). */
export const DEFAULT_UFS_CONNECT_TIMEOUT_MS = 5_000;
/** A request whose response (headers or next body bytes) stalls this long fails (`ufs.request_timeout`). */
export const DEFAULT_UFS_REQUEST_TIMEOUT_MS = 60_000;
/** Attempts of an idempotent request on connection errors and 5xx answers (`ufs.max_attempts`). */
export const DEFAULT_UFS_MAX_ATTEMPTS = 3;
export const MAX_UFS_MAX_ATTEMPTS = 10;
/** Sockets kept open to one UFS endpoint. */
export const UFS_MAX_SOCKETS = 64;

/** Part size of S3 multipart uploads (`s3.part.size`); S3 requires ≥ 5 MiB for every part but the last. */
export const DEFAULT_S3_PART_SIZE_BYTES = 16 * MiB;
export const MIN_S3_PART_SIZE_BYTES = 5 * MiB;
export const MAX_S3_PART_SIZE_BYTES = 5 * GiB;
/** S3 refuses a multipart upload of more parts than this. */
export const MAX_S3_PARTS = 10_000;
/** Parts of one upload in flight at once (`s3.upload.concurrency`); bounds the memory of an upload. */
export const DEFAULT_S3_UPLOAD_CONCURRENCY = 4;
export const MAX_S3_UPLOAD_CONCURRENCY = 64;
/** CopyObject copies at most this much in one request; larger objects are copied part by part. */
export const MAX_S3_SINGLE_COPY_BYTES = 5 * GiB;
/** Part size of a multipart copy (UploadPartCopy). */
export const S3_COPY_PART_SIZE_BYTES = 512 * MiB;
/** Keys per DeleteObjects request (S3's limit). */
export const S3_DELETE_BATCH = 1000;
/** Keys a recursive rename or delete of an S3 "directory" touches at most: beyond it, the call fails. */
export const MAX_S3_TREE_KEYS = 1_000_000;

/** Redirects an HTTP origin may answer with before a request fails. */
export const HTTP_MAX_REDIRECTS = 5;
/** Bytes an HTTP read may discard when the origin ignores Range (answers 200) before failing. */
export const HTTP_MAX_SKIP_BYTES = 64 * MiB;
