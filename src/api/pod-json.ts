/**
 * How a pod is shown as JSON: `list --format=json` and the HTTP API's pod list share one shape (a
 * listed pod), `status --format=json` and the API's single pod another (the pod's whole context). One
 * module so that a field added for one reader reaches every reader.
 */
import { RKT_STATE_NAMES, type PodContext, type PodStateName } from '../../machines/pod.js';
import type { PodUserMetadata } from '../cli/pods.js';
import type { PodListRow } from '../engine/pod-list.js';

/** A listed pod (list --format=json, GET /v1/pods). */
export const podListJson = (r: PodListRow, meta: PodUserMetadata) => ({
  uuid: r.uuid,
  state: RKT_STATE_NAMES[r.state],
  host: r.context.host,
  apps: r.context.apps.map((a) => ({
    name: a.name, image_id: a.imageId ?? a.image, image_name: a.imageName, exit_code: a.exitCode,
    // What its cgroup accounted when it exited (AppExited): bytes and nanoseconds.
    ...(a.oom !== undefined ? { oom: a.oom } : {}),
    ...(a.memoryPeak !== undefined ? { memory_peak: a.memoryPeak } : {}),
    ...(a.cpuTime !== undefined ? { cpu_time: a.cpuTime } : {}),
    ...(a.hooks !== undefined ? { hooks: a.hooks } : {}),
    // A mutable pod's app has a state and times of its own.
    ...(a.state !== undefined ? { state: a.state, created_at: a.createdAt, started_at: a.startedAt, finished_at: a.finishedAt } : {}),
  })),
  created_at: r.context.createdAt,
  started_at: r.context.startedAt,
  exited_at: r.context.exitedAt,
  exit_code: r.context.exitCode,
  networks: (r.context.networks ?? []).filter((n) => n.attached).map((n) => ({ name: n.name, interface: n.ifName, ...n.summary, result: n.result })),
  user_annotations: meta.userAnnotations,
  user_labels: meta.userLabels,
});

export type PodListJson = ReturnType<typeof podListJson>;

/** A pod whole (status --format=json, GET /v1/pods/{uuid}): its context, in rkt's state names. */
export const podStatusJson = (pod: { state: PodStateName; version: number; context: PodContext }, meta: PodUserMetadata) => ({
  ...pod.context,
  state: RKT_STATE_NAMES[pod.state],
  version: pod.version,
  ...meta,
});
