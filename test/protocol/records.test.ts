import { mkdtemp, mkdir, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, test } from "vitest";
import { loadJobs, RunFolderError, SlurmkitError } from "../../src/index.js";
import { packr } from "../../src/protocol/codec.js";
import {
  decodeAfter,
  decodeAttempt,
  decodeCheckpoint,
  decodeClaim,
  decodeManifest,
  decodeRelease,
  decodeResult,
  decodeState,
  encodeManifest,
  MANIFEST_VERSION,
  type Manifest,
} from "../../src/protocol/records.js";
import { failedResult } from "../../src/protocol/results.js";

const manifest: Manifest = { version: 1, kind: "local", createdAt: "2026-11-21T00:00:00.000Z", taskCount: 2, jobId: null, array: true, ranks: 1 };
const ok = { ok: true, value: { loss: 0.25, big: 2 ** 40, huge: 2n ** 64n - 1n }, host: "n1", jobId: "7_0", startedAt: 1_763_780_000_000, endedAt: 1_763_780_000_001 };

function thrown(f: () => unknown): RunFolderError {
  try {
    f();
  } catch (error) {
    expect(error).toBeInstanceOf(RunFolderError);
    expect(error).toBeInstanceOf(SlurmkitError);
    return error as RunFolderError;
  }
  throw new Error("expected a RunFolderError");
}

describe("run-folder records decoded with zod/mini, one decoder per record for the client and the runner", () => {
  test("a result, a state and a manifest round-trip", () => {
    expect(decodeResult(packr.pack(ok), "/r/0.result")).toEqual(ok);
    const failed = { ok: false, error: { name: "Error", message: "boom", stack: "Error: boom", exitCode: 2 }, host: "n2", jobId: "7_1", startedAt: 1, endedAt: 2 };
    expect(decodeResult(packr.pack(failed), "/r/1.result")).toEqual(failed);
    const state = { state: "RUNNING", host: "n1", jobId: "7_0", pid: 42, at: 3 };
    expect(decodeState(packr.pack(state), "/s/0.state")).toEqual(state);
    expect(decodeManifest(encodeManifest(manifest), "/m/manifest.json")).toEqual(manifest);
  });

  test("the records the runner reads (claims, attempts, checkpoints, `after`) round-trip, and a foreign one names what is wrong", () => {
    const claim = { worker: "7_1", slot: 0, host: "n1", at: 5 };
    expect(decodeClaim(packr.pack(claim), "/c/3")).toEqual(claim);
    const attempt = { attempt: 0, ended: "TIMEOUT", host: "n1", jobId: "7_1", startedAt: 1, endedAt: 2 };
    expect(decodeAttempt(packr.pack(attempt), "/a/3.0")).toEqual(attempt);
    const checkpoint = { attempt: 1, arg: { step: 2n ** 64n - 1n, path: "/ckpt" } };
    expect(decodeCheckpoint(packr.pack(checkpoint), "/k/3")).toEqual(checkpoint);
    const after = { deps: [{ dir: "/runs/a", jobId: "12", indices: [0, 2] }] };
    expect(decodeAfter(packr.pack(after), "/runs/b/after")).toEqual(after);
    expect(thrown(() => decodeAfter(packr.pack({ deps: [{ dir: "/runs/a", jobId: "12", indices: [-1] }] }), "/runs/b/after")).message).toMatch(
      /^\/runs\/b\/after is not a slurmkit dependency file: `deps\.0\.indices\.0`: /,
    );
    expect(thrown(() => decodeCheckpoint(packr.pack({ arg: 1 }), "/k/3")).message).toMatch(/^\/k\/3 is not a slurmkit checkpoint file: `attempt`: /);
  });

  test("a truncated result file is a RunFolderError naming the file", () => {
    const bytes = packr.pack(ok);
    const e = thrown(() => decodeResult(bytes.subarray(0, bytes.length - 5), "/runs/x/results/0.result"));
    expect(e.path).toBe("/runs/x/results/0.result");
    expect(e.message).toMatch(/^\/runs\/x\/results\/0\.result is not a readable result file \(\d+ bytes, truncated or corrupt msgpack: /);
    expect(thrown(() => decodeResult(new Uint8Array(), "/r/0.result")).message).toBe("/r/0.result is empty where a result file was expected");
  });

  test("a foreign result or state names what is wrong", () => {
    expect(thrown(() => decodeResult(packr.pack({ ok: true, value: 1 }), "/r/0.result")).message).toBe(
      "/r/0.result is not a slurmkit result file: `host`: Invalid input: expected string, received undefined; `jobId`: Invalid input: expected string, received undefined; `startedAt`: Invalid input: expected number, received undefined",
    );
    expect(thrown(() => decodeState(packr.pack({ state: "DONE", host: "n1", jobId: "1", pid: 1, at: 1 }), "/s/0.state")).message).toMatch(/^\/s\/0\.state is not a slurmkit state file: `state`: /);
  });

  test("version 1 (files per task), 2 (streams, claims per task) and 3 (claims by blocks) manifests still read; version 4 is what this slurmkit writes", () => {
    expect(decodeManifest(JSON.stringify({ ...manifest, version: 1 }), "/m.json").version).toBe(1);
    expect(decodeManifest(JSON.stringify({ ...manifest, version: 2 }), "/m.json").version).toBe(2);
    expect(decodeManifest(JSON.stringify({ ...manifest, version: 3 }), "/m.json").version).toBe(3);
    const request = { cpus: 2, memMb: 100, timeSeconds: 300, gpus: 1, partition: "debug" };
    expect(decodeManifest(JSON.stringify({ ...manifest, version: 4, request }), "/m.json")).toMatchObject({ version: 4, request });
    expect(MANIFEST_VERSION).toBe(4);
  });

  test("a release names the tasks a claim's holder never started; a foreign one says what is wrong", () => {
    const release = { tasks: [4, 5, 9], by: "7_1", at: 5 };
    expect(decodeRelease(packr.pack(release), "/r/b3")).toEqual(release);
    expect(thrown(() => decodeRelease(packr.pack({ tasks: [-1], by: "7_1", at: 5 }), "/r/b3")).message).toMatch(/^\/r\/b3 is not a slurmkit release file: `tasks.0`: /);
  });

  test("a manifest from a newer slurmkit says so", () => {
    const e = thrown(() => decodeManifest(JSON.stringify({ ...manifest, version: 5, shards: [] }), "/runs/x/manifest.json"));
    expect(e.message).toBe("/runs/x/manifest.json was written by a newer slurmkit (manifest version 5); this slurmkit reads versions 1 to 4: upgrade slurmkit to load it");
    expect(thrown(() => decodeManifest('{"version": 1, "kind": "slurm"', "/m.json")).message).toMatch(/^\/m\.json is not valid JSON \(truncated or corrupt\): /);
  });

  test("loadJobs refuses a submission whose manifest is from a newer version, naming it", async () => {
    const root = await mkdtemp(join(tmpdir(), "slurmkit-records-"));
    const dir = join(root, "20261121T000000Z-abcdef");
    await mkdir(dir);
    await writeFile(join(dir, "manifest.json"), JSON.stringify({ ...manifest, version: 5 }));
    const error = await loadJobs(root).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RunFolderError);
    expect((error as RunFolderError).path).toBe(join(dir, "manifest.json"));
    expect((error as Error).message).toContain("manifest version 5");
  });

  test("loadJobs refuses a submission of a scheduler it does not know, naming the file, the kind and the kinds it knows", async () => {
    const root = await mkdtemp(join(tmpdir(), "slurmkit-records-"));
    const dir = join(root, "20261121T000000Z-abcdef");
    await mkdir(dir);
    await writeFile(join(dir, "manifest.json"), encodeManifest({ ...manifest, kind: "lsf" }));
    const error = await loadJobs(root).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RunFolderError);
    expect((error as RunFolderError).path).toBe(join(dir, "manifest.json"));
    expect((error as Error).message).toBe(`${join(dir, "manifest.json")}: its kind 'lsf' is no scheduler this slurmkit knows (it knows slurm, pbs, local)`);
    // A kind that is not a scheduler's name at all is a foreign manifest.
    expect(thrown(() => decodeManifest(JSON.stringify({ ...manifest, kind: "Slurm; rm" }), "/m/manifest.json")).path).toBe("/m/manifest.json");
  });

  test("loadJobs lists submissions made in the same second oldest first, by their manifests' times, not by the random part of their names", async () => {
    const root = await mkdtemp(join(tmpdir(), "slurmkit-records-"));
    // Same second; the later one has the smaller random suffix.
    const made = [
      { name: "20261121T000000Z-ffffff", createdAt: "2026-11-21T00:00:00.100Z", taskCount: 1 },
      { name: "20261121T000000Z-000000", createdAt: "2026-11-21T00:00:00.900Z", taskCount: 2 },
    ];
    for (const m of made) {
      await mkdir(join(root, m.name, "results"), { recursive: true });
      await writeFile(join(root, m.name, "manifest.json"), encodeManifest({ ...manifest, createdAt: m.createdAt, taskCount: m.taskCount }));
    }
    const jobs = await loadJobs(root);
    expect(jobs.map((j) => j.id)).toEqual(["local-20261121T000000Z-ffffff_0", "local-20261121T000000Z-000000_0", "local-20261121T000000Z-000000_1"]);
  });
});

describe("the one builder of a failed task's result", () => {
  test("an error's stack defaults to its message; state, exit code and signal only where given; the record decodes", () => {
    const meta = { host: "n1", jobId: "12_3", startedAt: 1000, endedAt: 2000 };
    const cancelled = failedResult({ name: "TaskCancelled", message: "Task 3 was cancelled" }, meta, "CANCELLED");
    expect(cancelled).toEqual({ ok: false, state: "CANCELLED", error: { name: "TaskCancelled", message: "Task 3 was cancelled", stack: "Task 3 was cancelled" }, ...meta });
    const command = failedResult({ name: "CommandFailed", message: "exit 2", stack: "CommandFailed: exit 2", exitCode: 2, signal: undefined }, meta);
    expect(command).toEqual({ ok: false, error: { name: "CommandFailed", message: "exit 2", stack: "CommandFailed: exit 2", exitCode: 2 }, ...meta });
    expect(decodeResult(packr.pack(command), "/r")).toEqual(command);
    const now = failedResult({ name: "WorkerEnded", message: "gone" }, { host: "", jobId: "12", startedAt: 0 }, "NODE_FAIL");
    expect(now.endedAt).toBeGreaterThan(0);
  });
});
