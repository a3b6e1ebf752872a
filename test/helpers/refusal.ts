import { PodlogError } from '../../src/errors.js';

/** The PodlogError a promise is refused with (anything else fails the test). */
export const refusal = async (p: Promise<unknown>): Promise<PodlogError> => {
  const e = await p.then(
    () => undefined,
    (err: unknown) => err,
  );
  if (!(e instanceof PodlogError)) throw new Error(`expected a PodlogError, got ${String(e)}`);
  return e;
};
