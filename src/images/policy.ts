/**
 * How an image may be fetched and who must vouch for it: rkt's fetch-side --insecure-options and its
 * --local-config, which holds the credentials (auth.d), the trusted keys (trustedkeys) and where each
 * registry's signatures are (registries.d). One value, passed wherever an image is acquired (fetch,
 * prepare, run, app add), so every verb applies the same rules.
 */
import { PodlogError } from '../errors.js';

/** How images are acquired and checked: the local configuration (keys, credentials) and the checks --insecure-options skips. */
export interface FetchPolicy {
  /** rkt's --local-config (default /etc/podlog). */
  localConfig: string;
  /** --insecure-options=http: a registry or URL may be reached over plain http. */
  allowHttp: boolean;
  /** --insecure-options=tls: a registry's TLS certificate is not checked. */
  skipTlsVerify: boolean;
  /** --insecure-options=image: no signature is checked; the log records that the check was skipped. */
  skipImageVerify: boolean;
}

/** rkt's --local-config default, podlog's name. */
export const DEFAULT_LOCAL_CONFIG = '/etc/podlog';

/** --local-config as given (undefined: the default); an empty one would read the current directory. */
export const localConfigOf = (flag: string | undefined): string => {
  if (flag === '') throw new PodlogError('EUSAGE', '--local-config cannot be empty');
  return flag ?? DEFAULT_LOCAL_CONFIG;
};

export const defaultFetchPolicy = (localConfig = DEFAULT_LOCAL_CONFIG): FetchPolicy => ({
  localConfig, allowHttp: false, skipTlsVerify: false, skipImageVerify: false,
});
