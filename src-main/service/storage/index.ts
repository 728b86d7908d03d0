import path from 'node:path';
import { FondsError } from '../../../src-shared/errors';
import type { Config } from '../config';
import type { HashPool } from '../fixity/hash-pool';
import { LocalStorage } from './local';
import { S3Storage, type S3Settings } from './s3';
import type { Storage } from './storage';

export type { Fixity, PutFailure, PutOptions, Storage, Stored, Verification } from './storage';
export { LocalStorage } from './local';
export { S3Storage } from './s3';

/** The S3 settings of the configuration (endpoint, credentials, parts...), for its bucket and prefix or for `where`. */
export function s3SettingsFrom(config: Config, where: { bucket: string; prefix: string } = { bucket: config.s3Bucket, prefix: config.s3Prefix }): S3Settings {
  return {
    endpoint: config.s3Endpoint,
    region: config.s3Region,
    ...where,
    accessKeyId: config.s3AccessKeyId,
    secretAccessKey: config.s3SecretAccessKey,
    forcePathStyle: config.s3ForcePathStyle,
    partSizeMb: config.s3PartSizeMb,
    queueSize: config.s3QueueSize,
    verifyReread: config.s3VerifyReread,
  };
}

/** The storage the configuration names: the local folder by default, S3 when `storage` is 's3'. */
export function storageFromConfig(config: Config, pool: HashPool): Storage {
  if (config.storage === 's3') {
    if (!config.s3Bucket) throw new FondsError('CONFIG_INVALID', "setting 'storage' is s3 but 's3Bucket' (FONDS_S3_BUCKET) is empty.", { key: 's3Bucket' });
    return new S3Storage(s3SettingsFrom(config));
  }
  return new LocalStorage(config.storageDir || path.join(config.dataDir, 'storage'), pool, config.storageDurability);
}
