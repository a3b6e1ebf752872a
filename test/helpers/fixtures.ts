import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';

/** The repository root, found from this file's place in test/helpers/. */
export const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
/** Where fixtures/build.sh puts the images the tests use (npm test's pretest runs it). */
export const fixturesDir = join(repoRoot, 'fixtures', 'build');
export const busyboxRootfs = join(fixturesDir, 'rootfs', 'busybox');
export const aciPath = (name: string): string => join(fixturesDir, 'aci', `${name}.aci`);
