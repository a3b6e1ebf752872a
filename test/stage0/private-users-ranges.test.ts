/** How --private-users picks a pod's block of host ids (src/stage0/private-users.ts), without a pod. */
import test from 'ava';
import { pickShift, subordinateRanges } from '../../src/stage0/private-users.js';

const BLOCK = 65536;

test('subuid and subgid lines are read as ranges; anything else is skipped', (t) => {
  t.deepEqual(subordinateRanges('root:100000:65536\n# comment\nbad\nu:x:1\nv:5:0\n  podman:165536:65536  \n'), [
    { start: 100000, count: 65536 },
    { start: 165536, count: 65536 },
  ]);
});

test('a block is free of every used range, whole blocks of systemd\'s container range', (t) => {
  // Everything taken but one block: that one is picked, whatever the random start.
  const first = 0x80000;
  const free = first + 1000 * BLOCK;
  const used = [{ start: first, count: free - first }, { start: free + BLOCK, count: 0x70000000 - free - BLOCK }];
  for (const r of [0, 0.3, 0.999999]) t.is(pickShift(used, () => r), free);
  // A range that covers part of a block takes the whole block.
  t.is(pickShift([{ start: first + 5, count: 1 }], () => 0), first + BLOCK);
  // Ranges below the container range (a host's /etc/subuid) do not matter.
  t.is(pickShift([{ start: 100000, count: 65536 }], () => 0), first);
});

test('no free block is a clear error', (t) => {
  t.throws(() => pickShift([{ start: 0, count: 0x70000000 }]), { message: /--private-users: all 28664 blocks of 65536 user ids are taken/ });
});
