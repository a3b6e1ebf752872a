/**
 * `npm run bench`: every benchmark module, each printing its figures against peers or physical
 * references measured in the same run. BENCH=core,store runs a subset.
 */
const MODULES = ['core', 'store', 'writers', 'native', 'stage1', 'images', 'registry', 'stage0', 'volumes', 'private-users', 'network', 'limits', 'fleet', 'api-service', 'timeline'] as const;

// The peers (crun, runc, unshare) run with no network: so do podlog's pods, unless a benchmark
// names one (the network benchmark).
process.env.PODLOG_NET ??= 'none';
const only = process.env.BENCH?.split(',');
console.log(`podlog benchmarks, ${new Date().toISOString()}`);
for (const name of MODULES.filter((m) => !only || only.includes(m))) {
  console.log(`\n== ${name}`);
  const module = (await import(`./${name}.js`)) as { run: () => Promise<void> };
  await module.run();
}
