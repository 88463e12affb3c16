#!/usr/bin/env node
// An XPROCESS consumer worker with ioredis.
//
// At start-up it stores the group's definition with XPROCESS.DEFINE (every
// worker the same one), then loops on one command without effects:
// XPROCESS ... READ takes entries for this consumer (first those another
// consumer left pending for --min-idle-ms, then new ones), applies the
// definition's effects to each exactly once (add the amount to the
// customer's total and append a receipt), acks it, and moves an entry that
// failed --max-deliveries times to the dead-letter stream, all in one atomic
// step. Every option can also be given in the environment as XP_<NAME>
// (--block-ms -> XP_BLOCK_MS). Stops on SIGINT/SIGTERM, or with
// --until-idle-ms N after N ms without progress, then prints one summary
// line.
'use strict';
const { parseArgs } = require('node:util');
const Redis = require('ioredis');

// An empty dead-letter key means <stream>:dead.
const defaults = {
  host: '127.0.0.1', port: '6379', stream: 'payments', group: 'billing',
  consumer: `worker-${process.pid}`, totals: 'totals', receipts: 'receipts',
  'dead-letter': '', 'max-deliveries': '3', count: '10', 'block-ms': '1000',
  'min-idle-ms': '60000', 'until-idle-ms': '0',
};
const options = Object.fromEntries(Object.entries(defaults).map(([name, def]) => {
  const env = process.env[`XP_${name.toUpperCase().replaceAll('-', '_')}`];
  return [name, { type: 'string', default: env ?? def }];
}));
const o = parseArgs({ options }).values;
const me = o.consumer;
const deadLetter = o['dead-letter'] || `${o.stream}:dead`;
const untilIdleMs = Number(o['until-idle-ms']);

// Stop between two calls, never in the middle of one: a call applies and
// acks its entries or leaves them pending, all at once, even if we die.
let stop = false;
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => { stop = true; });

// The group's definition: its options and the effects of one entry, stored
// once at the group's derived dedupe key ({payments}:xprocess:billing by
// default) and applied by every call of the group that gives no effects,
// whichever worker makes it. Every worker sends the same one at start-up. A
// redefinition replaces it for all of them, so the workers of one group must
// agree on --dead-letter, --max-deliveries, --totals and --receipts (the last
// one started wins). XPROCESS.START <stream> <group> would have the server
// run it itself, with no worker at all.
// - DEADLETTER ... AFTER: an entry that failed on its max-deliveries-th
//   delivery is appended to the dead-letter stream (with the error and its
//   fields), acked and recorded, instead of coming back forever;
// - the effects of one entry, expanded by the server from the entry's own
//   fields; keys are literal. $@id makes the receipt point at its entry.
const definition = ['XPROCESS.DEFINE', o.stream, o.group,
  'DEADLETTER', deadLetter, 'AFTER', o['max-deliveries'],
  'HINCRBY', o.totals, '$customer', '$amount',
  'XADD', o.receipts, 'FIELDS', '2', 'src', '$@id', 'amount', '$amount'];

// The whole loop step, the same call every time, without effects (the server
// applies the definition's):
// - CONSUMER: the entries are taken for us (and would be fenced if we named
//   them with IDS instead of READ);
// - READ: CLAIM takes over entries pending (for anyone) for min-idle ms, a
//   consumer that crashed or stalls, or one of ours that failed; min-idle
//   must exceed the time a healthy worker needs for a call. Then new entries
//   up to COUNT. With nothing to do, BLOCK waits up to block-ms for an XADD;
//   it bounds how soon a stop request is noticed, and how late an entry that
//   just became idle enough is claimed.
const call = ['XPROCESS', o.stream, o.group, 'CONSUMER', me,
  'READ', 'COUNT', o.count, 'CLAIM', o['min-idle-ms'], 'BLOCK', o['block-ms']];

async function main() {
  // No commandTimeout (the default): a READ ... BLOCK call holds the
  // connection for up to --block-ms, as XREADGROUP ... BLOCK does.
  const redis = new Redis({ host: o.host, port: Number(o.port) });
  try {
    // Group at 0: a new group processes the stream from its first entry.
    await redis.xgroup('CREATE', o.stream, o.group, '0', 'MKSTREAM');
  } catch (e) {
    if (!e.message.startsWith('BUSYGROUP')) throw e;
  }
  await redis.call(...definition);
  const stats = { applied: 0, duplicates: 0, dead: 0, errors: 0, notowner: 0 };
  let lastProgress = Date.now();
  console.error(`${me}: consuming ${o.stream} in group ${o.group}`);

  while (!stop) {
    // One [id, outcome] pair per entry taken; an empty array when BLOCK timed
    // out. A whole-call error (NOGROUP, WRONGTYPE...) rejects the promise and
    // stops us. ioredis puts a per-entry error into its slot as an Error
    // object (ReplyError) instead of rejecting.
    const replies = await redis.call(...call);
    let progress = false;
    for (const [id, outcome] of replies) {
      if (outcome === 1) {
        stats.applied++;
      } else if (outcome === 0) {
        // Already applied (by us before a crash, or by another consumer):
        // nothing happened twice, and it is acked now.
        stats.duplicates++;
      } else if (outcome === 2) {
        // Failed on its max-deliveries-th delivery: in the dead-letter stream
        // now, acked, never applied.
        stats.dead++;
        console.error(`${me}: ${id} moved to ${deadLetter}`);
      } else if (outcome.message.startsWith('NOTOWNER')) {
        // Another consumer owns it. READ never answers this (it has just
        // taken the entries for us); a loop on IDS can.
        stats.notowner++;
        console.error(`${me}: skip ${id}, another consumer owns it`);
      } else {
        // Nothing was changed and the entry stays pending for us: it comes
        // back through CLAIM after min-idle ms, and goes to the dead-letter
        // stream on its max-deliveries-th failure.
        stats.errors++;
        console.error(`${me}: ${id} failed, left pending: ${outcome.message}`);
      }
      progress ||= outcome === 0 || outcome === 1 || outcome === 2;
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
