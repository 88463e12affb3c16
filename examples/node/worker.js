#!/usr/bin/env node
// An XPROCESS consumer worker with ioredis.
//
// Reads new entries with XREADGROUP, takes over abandoned ones with
// XAUTOCLAIM, and applies each entry exactly once with XPROCESS: add the
// amount to the customer's total and append a receipt. Every option can also
// be given in the environment as XP_<NAME> (--block-ms -> XP_BLOCK_MS). Stops
// on SIGINT/SIGTERM, or with --until-idle-ms N after N ms without progress,
// then prints one summary line.
'use strict';
const { parseArgs } = require('node:util');
const Redis = require('ioredis');

const defaults = {
  host: '127.0.0.1', port: '6379', stream: 'payments', group: 'billing',
  consumer: `worker-${process.pid}`, totals: 'totals', receipts: 'receipts',
  count: '10', 'block-ms': '1000', 'min-idle-ms': '60000', 'until-idle-ms': '0',
};
const options = Object.fromEntries(Object.entries(defaults).map(([name, def]) => {
  const env = process.env[`XP_${name.toUpperCase().replaceAll('-', '_')}`];
  return [name, { type: 'string', default: env ?? def }];
}));
const o = parseArgs({ options }).values;
const me = o.consumer;
const [count, blockMs, minIdleMs, untilIdleMs] =
  ['count', 'block-ms', 'min-idle-ms', 'until-idle-ms'].map((n) => Number(o[n]));

// Stop between batches, never in the middle of one: a batch either gets its
// XPROCESS reply or stays pending for XAUTOCLAIM to recover.
let stop = false;
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => { stop = true; });

// The effects of one entry, expanded by the server from the entry's own
// fields; keys are literal. $@id makes the receipt point at its entry.
const effects = ['HINCRBY', o.totals, '$customer', '$amount',
  'XADD', o.receipts, 'FIELDS', '2', 'src', '$@id', 'amount', '$amount'];

async function main() {
  const redis = new Redis({ host: o.host, port: Number(o.port) });
  try {
    // Group at 0: a new group processes the stream from its first entry.
    await redis.xgroup('CREATE', o.stream, o.group, '0', 'MKSTREAM');
  } catch (e) {
    if (!e.message.startsWith('BUSYGROUP')) throw e;
  }
  const stats = { applied: 0, duplicates: 0, errors: 0, notowner: 0, claimed: 0 };
  let cursor = '0-0';
  let lastProgress = Date.now();
  console.error(`${me}: consuming ${o.stream} in group ${o.group}`);

  while (!stop) {
    // First take over entries another consumer read but did not finish
    // within min-idle ms (it crashed or stalls). min-idle must exceed the
    // time a healthy worker needs for a batch, or workers steal from each
    // other; if they do, CONSUMER fencing below still keeps it exact.
    const [next, claimed] = await redis.xautoclaim(
      o.stream, o.group, me, minIdleMs, cursor, 'COUNT', count);
    cursor = next;
    let ids = claimed.map(([id]) => id);
    stats.claimed += ids.length;
    // Then new entries, waiting for some only if there is nothing else to do
    // (reading even when entries were claimed: a claimed entry that keeps
    // failing must not starve new ones). BLOCK stays short so a stop request
    // is noticed soon.
    const block = ids.length > 0 ? [] : ['BLOCK', blockMs];
    const reply = await redis.xreadgroup('GROUP', o.group, me, 'COUNT', count, ...block,
      'STREAMS', o.stream, '>');
    ids = ids.concat((reply ?? []).flatMap(([, entries]) => entries.map(([id]) => id)));

    let progress = false;
    if (ids.length > 0) {
      // CONSUMER: apply an entry only while it is still pending for us. If a
      // slower worker claimed it away, we get NOTOWNER instead of applying it
      // a second time behind the new owner's back. A whole-call error
      // (NOGROUP, WRONGTYPE...) rejects the promise and stops us.
      const replies = await redis.call('XPROCESS', o.stream, o.group, 'CONSUMER', me,
        ...effects, 'IDS', ids.length, ...ids);
      // ioredis puts a per-entry error into the array as an Error object
      // (ReplyError) instead of rejecting.
      replies.forEach((reply, i) => {
        if (reply === 1) {
          stats.applied++;
        } else if (reply === 0) {
          // Already applied (by us before a crash, or by another consumer):
          // nothing happened twice, and it is acked now.
          stats.duplicates++;
        } else if (reply.message.startsWith('NOTOWNER')) {
          stats.notowner++;
          console.error(`${me}: skip ${ids[i]}, another consumer owns it`);
        } else {
          // Nothing was changed and the entry stays pending: it is retried
          // when XAUTOCLAIM hands it out again after min-idle.
          stats.errors++;
          console.error(`${me}: ${ids[i]} failed, left pending: ${reply.message}`);
        }
        progress ||= reply === 0 || reply === 1;
      });
    }
    if (progress) {
      lastProgress = Date.now();
    } else if (untilIdleMs > 0 && Date.now() - lastProgress >= untilIdleMs) {
      break;
    }
  }
  await redis.quit();
  console.log('stopped: ' + Object.entries(stats).map(([k, v]) => `${k}=${v}`).join(' '));
}

main().catch((e) => {
  console.error(`${me}: ${e.message}`);
  process.exit(1);
});
