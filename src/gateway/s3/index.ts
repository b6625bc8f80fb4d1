/** The S3-compatible gateway (`strata s3`): its public face. */
export { S3Gateway, DEFAULT_STOP_GRACE_MS } from './gateway.js';
export type { S3GatewayOptions } from './gateway.js';
export { gatewaySettings, parseCredentialsFile } from './settings.js';
export type { GatewaySettings } from './settings.js';
export { S3Error, S3_ERROR_STATUS } from './errors.js';
export type { S3ErrorCode } from './errors.js';
