#!/usr/bin/env node
// Peer-queue benchmark for Graphile Worker (pinned to 0.17.3 in package.json).
//
// Spawned by `partnerflow bench queue`, which parses the single JSON line this
// script prints on stdout. Anything else (errors) goes to stderr.
//
// usage: node drain.mjs --url <postgres url> --jobs N [--batch 1000]
//                       [--mode default|batched] [--concurrency C] [--timeout S]
//
// Phases:
//   1. run graphile-worker's migrations, then empty its tables so every run
//      starts from zero (the database may be reused between runs);
//   2. insert N no-op jobs (task `noop`) in batches via WorkerUtils.addJobs,
//      which calls the bulk SQL function graphile_worker.add_jobs(...);
//   3. start a worker with run() and time until the jobs table is empty, as
//      seen by a poller on its own connection (durable completion, not the
//      moment the handler returned).

import { createRequire } from "node:module";
import { parseArgs } from "node:util";
import { Logger, makeWorkerUtils, run, WorkerPreset } from "graphile-worker";

const require = createRequire(import.meta.url);
const VERSION = require("graphile-worker/package.json").version;

// Graphile Worker's default schema; the jobs live in `_private_jobs` since
// migration 000016 (the public `jobs` name is a view). Completed jobs are
// deleted from this table, so "no rows left" means "all jobs completed".
const SCHEMA = "graphile_worker";
const JOBS_TABLE = `${SCHEMA}._private_jobs`;
const QUEUES_TABLE = `${SCHEMA}._private_job_queues`;
const POLL_MS = 20;

// Silence Graphile entirely: stdout must only carry the result line.
const quietLogger = new Logger(() => () => {});

const USAGE =
  "usage: node drain.mjs --url <postgres url> --jobs N [--batch 1000] [--mode default|batched] [--concurrency C] [--timeout S]";

// Bad command lines are reported as a one-line message plus usage (no stack).
class UsageError extends Error {}

function parseCli() {
  let values;
  try {
    ({ values } = parseArgs({
      options: {
        url: { type: "string" },
        jobs: { type: "string" },
        batch: { type: "string", default: "1000" },
        mode: { type: "string", default: "default" },
        concurrency: { type: "string" },
        timeout: { type: "string", default: "600" }, // seconds, whole drain
      },
      strict: true,
    }));
  } catch (e) {
    throw new UsageError(e.message);
  }
  const posInt = (name, v) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 1) throw new UsageError(`--${name} must be a positive integer (got ${v})`);
    return n;
  };
  if (!values.url) throw new UsageError("--url is required");
  if (values.jobs === undefined) throw new UsageError("--jobs is required");
  if (!["default", "batched"].includes(values.mode)) {
    throw new UsageError(`--mode must be 'default' or 'batched' (got ${values.mode})`);
  }
  return {
    url: values.url,
    jobs: posInt("jobs", values.jobs),
    batch: posInt("batch", values.batch),
    mode: values.mode,
    concurrency: values.concurrency === undefined ? undefined : posInt("concurrency", values.concurrency),
    timeoutMs: posInt("timeout", values.timeout) * 1000,
  };
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const seconds = (t0) => Number(process.hrtime.bigint() - t0) / 1e9;

async function main() {
  const opts = parseCli();

  // WorkerUtils owns its own pg pool, separate from the worker's pool; we use
  // it for migrations, cleanup, inserts and the completion poller.
  const utils = await makeWorkerUtils({ connectionString: opts.url, logger: quietLogger });
  let runner;
  try {
    // 1. Schema + clean slate. `_private_tasks` is kept (just task names).
    await utils.migrate();
    await utils.withPgClient((c) => c.query(`truncate ${JOBS_TABLE}, ${QUEUES_TABLE}`));

    // 2. Bulk insert, timed.
    const tInsert = process.hrtime.bigint();
    for (let done = 0; done < opts.jobs; ) {
      const n = Math.min(opts.batch, opts.jobs - done);
      await utils.addJobs(Array.from({ length: n }, () => ({ identifier: "noop", payload: {} })));
      done += n;
    }
    const insertSeconds = seconds(tInsert);

    // 3. Drain. `default` = Graphile's defaults (pollInterval 2000 ms,
    // concurrentJobs 1 unless overridden); `batched` = the documented batching
    // options (local queue + batched completion).
    const concurrency = opts.concurrency ?? WorkerPreset.worker.concurrentJobs;
    const preset =
      opts.mode === "batched"
        ? { worker: { localQueue: { size: 500 }, completeJobBatchDelay: 0 } }
        : undefined;

    let workerError = null;
    const tDrain = process.hrtime.bigint();
    runner = await run({
      connectionString: opts.url,
      logger: quietLogger,
      noHandleSignals: true,
      parsedCronItems: [], // no crontab file lookup
      taskList: { noop: async () => {} },
      ...(opts.concurrency !== undefined ? { concurrency: opts.concurrency } : {}),
      ...(preset ? { preset } : {}),
    });
    // A no-op should never fail; if one does, the table would never empty.
    runner.events.on("job:error", ({ error }) => {
      workerError ??= error;
    });
    runner.promise.catch((e) => {
      workerError ??= e;
    });

    // Poll on one dedicated connection until the remaining-job count is 0.
    // `exists (... order by id limit 1)` is that test done as a primary-key
    // index probe: a literal count(*) (or a bare exists) seq-scans the whole
    // heap of dead rows every 20 ms, which measurably slowed the worker
    // (~2x in default mode on a 2-core box).
    await utils.withPgClient(async (c) => {
      const deadline = Date.now() + opts.timeoutMs;
      for (;;) {
        const { rows } = await c.query(`select exists (select 1 from ${JOBS_TABLE} order by id limit 1) as left`);
        if (!rows[0].left) return;
        if (workerError) throw new Error(`worker error: ${workerError?.message ?? workerError}`);
        if (Date.now() > deadline) throw new Error(`drain timed out after ${opts.timeoutMs / 1000}s`);
        await sleep(POLL_MS);
      }
    });
    const drainSeconds = seconds(tDrain);

    await runner.stop();
    await runner.promise;
    runner = undefined;

    process.stdout.write(
      JSON.stringify({
        queue: `graphile-worker ${VERSION}`,
        mode: opts.mode,
        jobs: opts.jobs,
        insert_seconds: insertSeconds,
        drain_seconds: drainSeconds,
        jobs_per_second: opts.jobs / drainSeconds,
        concurrency,
      }) + "\n",
    );
  } finally {
    if (runner) await runner.stop().catch(() => {});
    await utils.release().catch(() => {});
  }
}

function fail(err) {
  const msg = err instanceof UsageError ? `${err.message}\n${USAGE}` : (err?.stack ?? err);
  process.stderr.write(`drain.mjs: ${msg}\n`);
  process.exit(1);
}

// Errors raised inside Graphile's background work (e.g. its batched
// completion losing its connection when the server restarts) surface here
// rather than through main(); report them the same way.
process.on("uncaughtException", fail);
process.on("unhandledRejection", fail);

main().then(() => process.exit(0), fail);
