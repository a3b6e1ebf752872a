/**
 * Throwaway OpenPGP keys made by the real gpg (Debian's gnupg), in a temporary GNUPGHOME of the test
 * file's own: ed25519 keys without a passphrase (made in milliseconds), exported, and used to sign as
 * an image's publisher would (`gpg --armor --detach-sign` for an ACI, `gpg --sign` for a simple-signing
 * payload). `close` stops the gpg-agent the home started and removes it.
 */
import { execFile, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

export interface Gpg {
  home: string;
  /** Makes a signing key; returns its fingerprint (upper-case hex, as gpg prints it). */
  newKey(name: string): string;
  /** Writes the armored public key of `fpr` to `path`. */
  exportKey(fpr: string, path: string): string;
  /** Writes the armored secret key of `fpr` to `path`. */
  exportSecretKey(fpr: string, path: string): string;
  /** `gpg --armor --detach-sign` of `file` by `fpr` (with `digestAlgo`, gpg's choice by default), written to `file`.asc. */
  detachSign(fpr: string, file: string, digestAlgo?: string): string;
  /** `gpg --sign` of `data` by `fpr` (a signed message holding the data, binary). */
  sign(fpr: string, data: Buffer): Buffer;
  close(): void;
}

export const makeGpg = (): Gpg => {
  // Short: gpg-agent's socket path must fit in a sockaddr_un.
  const home = mkdtempSync(join(tmpdir(), 'gpg-'));
  const env = { ...process.env, GNUPGHOME: home };
  const gpg = (args: string[], input?: Buffer | string): Buffer => {
    const r = spawnSync('gpg', ['--batch', '--pinentry-mode', 'loopback', '--passphrase', '', ...args], { env, input, maxBuffer: 1 << 26 });
    if (r.status !== 0) throw new Error(`gpg ${args.join(' ')}: exit ${r.status}: ${r.stderr.toString()}`);
    return r.stdout;
  };
  return {
    home,
    newKey(name) {
      const email = `${name.toLowerCase().replace(/[^a-z0-9]+/g, '.')}@podlog.invalid`;
      gpg(['--gen-key'], ['%no-protection', 'Key-Type: EDDSA', 'Key-Curve: ed25519', 'Key-Usage: sign', `Name-Real: ${name}`, `Name-Email: ${email}`, 'Expire-Date: 0', '%commit', ''].join('\n'));
      const fpr = /^fpr:+([0-9A-F]+):/m.exec(gpg(['--with-colons', '--list-keys', `<${email}>`]).toString());
      if (!fpr) throw new Error(`gpg made no key for ${email}`);
      return fpr[1]!;
    },
    exportKey(fpr, path) {
      writeFileSync(path, gpg(['--armor', '--export', fpr]));
      return path;
    },
    exportSecretKey(fpr, path) {
      writeFileSync(path, gpg(['--armor', '--export-secret-keys', fpr]));
      return path;
    },
    detachSign(fpr, file, digestAlgo) {
      gpg(['--yes', '--local-user', fpr, ...(digestAlgo ? ['--digest-algo', digestAlgo] : []), '--armor', '--detach-sign', '--output', `${file}.asc`, file]);
      return `${file}.asc`;
    },
    sign(fpr, data) {
      return gpg(['--local-user', fpr, '--sign'], data);
    },
    close() {
      spawnSync('gpgconf', ['--homedir', home, '--kill', 'all']);
      rmSync(home, { recursive: true, force: true });
    },
  };
};

/**
 * `skopeo copy` of `from` (`oci:DIR:TAG`) to `to` (`docker://HOST[:PORT]/NAME:TAG`), over plain http,
 * signed by `sign.by` when given: skopeo writes the signature to `sign.lookaside` (a file:// URL),
 * named in a registries.d YAML of its own, as containers' tools are configured.
 */
export const skopeoCopy = async (gpg: Gpg, from: string, to: string, sign?: { by: string; lookaside: string }): Promise<void> => {
  const config = join(gpg.home, 'registries.d');
  if (sign) {
    mkdirSync(config, { recursive: true });
    writeFileSync(join(config, 'podlog-test.yaml'), `docker:\n  ${to.slice('docker://'.length).split('/')[0]}:\n    sigstore-staging: ${sign.lookaside}\n`);
  }
  await promisify(execFile)('/usr/bin/skopeo', [
    ...(sign ? ['--registries.d', config] : []), 'copy', '--insecure-policy', '--dest-tls-verify=false', ...(sign ? ['--sign-by', sign.by] : []), from, to,
  ], { env: { ...process.env, GNUPGHOME: gpg.home } });
};
