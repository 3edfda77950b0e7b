// The HIL stress scenarios: a Wake Up flood, a key-management socket that stops
// delivering, and forged Wake Ups streamed during a genuine wake (issue 12, 13).
import dgram from 'node:dgram';
import { encodeWakeUp, KMMID, DOI } from '../../firmware/proto/pktc.ts';
import { ctEqual } from '../../firmware/proto/bytes.ts';
import { sleep } from './targets.ts';
import { check, c, drops, until, sessionCounted, apRequests, wakeEstablished, established, ensureEstablished, idle, seq, Check } from './scenario-kit.ts';
import type { Scenario } from './scenario-kit.ts';

export const flood: Scenario = {
  name: 'wake-up-flood',
  title: 'Wake Up flood: device memory flat, every datagram dropped and counted, then a legitimate Wake Up succeeds',
  async run(ctx) {
    // A fresh exchange: its AP Reply, replayed through the proxy (from the SC's provisioned
    // address and port), is the in-band marker below.
    await idle(ctx);
    const mark0 = ctx.proxy.total;
    await wakeEstablished(ctx, ctx.exchangeTimeoutMs, 'a preparatory exchange');
    await until(ctx, (x) => x.scs[0]?.state === 'established', ctx.exchangeTimeoutMs, 'the CTA to report its SA');
    const apRep = ctx.proxy.since(mark0).filter((r) => r.dir === 'sc->cta' && !r.dropped && r.data[0] === KMMID.AP_REPLY).pop();
    check(apRep !== undefined, 'no AP Reply seen for the preparatory exchange');
    const s0 = await idle(ctx);
    const m0 = await ctx.device.memory();
    ctx.memory.push({ label: 'before flood', m: m0 });
    const a = dgram.createSocket('udp4');
    const b = dgram.createSocket('udp4');
    await new Promise<void>((r) => a.bind({ port: 0, address: '127.0.0.1' }, () => r()));
    // Another loopback address for Wake Ups from the wrong host (Linux routes all of 127/8).
    let wrongHost = true;
    await new Promise<void>((r) => {
      b.once('error', () => {
        wrongHost = false;
        r();
      });
      b.bind({ port: 0, address: '127.0.0.2' }, () => r());
    });
    const evil = encodeWakeUp({ kmmid: KMMID.WAKE_UP, doi: DOI.IPSEC, serverNonce: 1, serverPrincipal: 'sc/evil.example.net@EVIL.NET' });
    const zero = encodeWakeUp({ kmmid: KMMID.WAKE_UP, doi: DOI.IPSEC, serverNonce: 0, serverPrincipal: ctx.scPrincipal });
    const sent = [0, 0, 0, 0];
    const port = ctx.device.kmPort;
    // Flow control in band, without touching the device's console (on the Espruino Linux
    // build, console input during a UDP burst corrupts its IO queue): after every batch the
    // preparatory exchange's AP Reply is replayed through the proxy; the CTA answers a
    // repeated AP Reply with its SA Recovered again -- the sign that it has worked through
    // the batch before it. Every 50th datagram is a spoofed Wake Up from the SC's host with
    // the right principal and a fresh nonce, but not from the SC's provisioned port: the CTA
    // drops it (wrong_address) instead of answering the flooder with an AP Request.
    const batch = 50;
    const t0 = Date.now();
    let lostBatches = 0;
    let stalledAt = -1;
    let markers = 0;
    try {
      for (let i = 0; i < ctx.floodCount; ) {
        const end = Math.min(ctx.floodCount, i + batch);
        const jobs: Promise<void>[] = [];
        for (; i < end; i++) {
          let k = i % batch === batch - 1 ? 3 : i % 3;
          if (k === 2 && !wrongHost) k = 0;
          sent[k]++;
          const msg = k === 0 ? evil : k === 1 ? zero : encodeWakeUp({ kmmid: KMMID.WAKE_UP, doi: DOI.IPSEC, serverNonce: 0x10000 + i, serverPrincipal: ctx.scPrincipal });
          const sock = k === 2 ? b : a;
          jobs.push(new Promise((r) => sock.send(msg, port, '127.0.0.1', () => r())));
        }
        await Promise.all(jobs);
        const answered = ctx.proxy.waitFor((r) => r.dir === 'cta->sc' && r.data[0] === KMMID.SA_RECOVERED, ctx.exchangeTimeoutMs);
        markers++;
        ctx.proxy.inject(apRep!.data);
        if (!(await answered)) {
          lostBatches++;
          // Two batches in a row without an answer: the device has stopped taking datagrams.
          if (lostBatches >= 2) {
            stalledAt = i;
            break;
          }
        } else lostBatches = 0;
      }
    } finally {
      a.close();
      if (wrongHost) b.close();
    }
    const floodMs = Date.now() - t0;
    // Let the last session (if any) run out, then read memory back.
    const s1 = await idle(ctx);
    const m1 = await ctx.device.memory();
    ctx.memory.push({ label: 'after flood', m: m1 });
    const rx = c(s1).rx - c(s0).rx;
    const d = (r: string) => drops(s1, r) - drops(s0, r);
    const accepted = c(s1).wakeUps - c(s0).wakeUps;
    const accounted = d('unknown_sc') + d('nonce_zero') + d('wrong_address') + d('table_full') + d('busy') + d('rate_limited') + accepted + markers;
    check(stalledAt < 0, `the device stopped answering during the flood: no SA Recovered for the in-band markers after ${stalledAt} datagrams (it received ${rx})`);
    check(d('internal') === 0, `${d('internal')} internal errors on the device`);
    check(rx >= (ctx.floodCount + markers) * 0.99, `the device received only ${rx} of ${ctx.floodCount + markers} datagrams`);
    check(accounted === rx, `received ${rx} datagrams, but only ${accounted} were counted as dropped, accepted or markers`);
    // The CTA is provisioned with the SC's HOST:PORT, so everything from another port is dropped
    // first, as wrong_address, before its principal or nonce is read.
    const flooded = sent[0] + sent[1] + (wrongHost ? sent[2] : 0) + sent[3];
    check(d('wrong_address') >= flooded * 0.99, `wrong_address ${d('wrong_address')}/${flooded} (unknown_sc ${d('unknown_sc')}, nonce_zero ${d('nonce_zero')})`);
    check(accepted === 0, `${accepted} spoofed Wake Up(s) from a port other than the SC's were answered`);
    check(s1.slotsInUse <= s1.slots, 'session table over its size');
    const grew = m1.usage - m0.usage;
    const bound = Math.max(48, Math.ceil(m0.total * 0.02));
    check(grew <= bound, `device memory grew by ${grew} variables (bound ${bound})`);
    // A legitimate Wake Up then succeeds.
    const e = await wakeEstablished(ctx, ctx.exchangeTimeoutMs);
    await until(ctx, (s) => c(s).sessionsEstablished > c(s1).sessionsEstablished, ctx.exchangeTimeoutMs, 'the CTA to count the session');
    return {
      details: [
        `sent ${ctx.floodCount} in ${floodMs} ms (unknown SC ${sent[0]}, nonce 0 ${sent[1]}, wrong host ${wrongHost ? sent[2] : 'n/a'}, spoofed from the wrong port ${sent[3]}) and ${markers} markers; device received ${rx}, accepted ${accepted}${lostBatches ? `, ${lostBatches} batch marker(s) unanswered` : ''}`,
        `device memory usage ${m0.usage} -> ${m1.usage} of ${m1.total} variables (${grew >= 0 ? '+' : ''}${grew}, bound ${bound})`,
        `legitimate Wake Up after the flood: established in ${e.latencyMs} ms`,
      ],
    };
  },
};

export const socketStall: Scenario = {
  name: 'socket-stall',
  title: "the CTA's UDP socket stops delivering mid-exchange: the CTA aborts at its usual timeout and re-creates the socket; the SC's next Wake Up completes on it",
  unavailable: (device) =>
    device.stallKmSocket ? null : "the stall is injected into the emulator's UDP socket; this target's network stack cannot be made to stop delivering from here",
  async run(ctx) {
    await ensureEstablished(ctx);
    const s0 = await idle(ctx);
    const r0 = c(s0).socketsRecreated ?? 0;
    // The CTA lets at most 4 triggers per second per SC through: a second of quiet first, so
    // the scenarios before this one cannot have used up the current one. (Placed before
    // clock-skew in the suite: after the device clock has been set back, the CTA's trigger
    // window does not restart until the clock passes its start again.)
    await sleep(1000);
    const mark = ctx.proxy.total;
    // The socket wedges as the CTA's AP Request passes the proxy: the Wake Up got through, and
    // every answer to it (the AP Reply, again for each retransmission) is lost in the socket.
    let stall: { sockets: number; dropped: number } | null = null;
    ctx.proxy.filter = (d, dir) => {
      if (!stall && dir === 'cta->sc' && d[0] === KMMID.AP_REQUEST) stall = ctx.device.stallKmSocket!(0);
      return true;
    };
    try {
      ctx.sc.wake(ctx.ctaPrincipal);
      // The stalled exchange ends as any unanswered one does, at the CTA's abort timeout; the
      // socket, quiet since the AP Request left, is re-created as it ends.
      const s1 = await until(ctx, (s) => c(s).sessionsAborted > c(s0).sessionsAborted, ctx.timers.abortMs + ctx.exchangeTimeoutMs, 'the CTA to abort the stalled exchange').catch(async (err: Error) => {
        throw new Check(`${err.message}; wire: ${seq(ctx.proxy.since(mark))}; stalled ${stall ? (stall as { dropped: number }).dropped : 'never'}`);
      });
      const done = Date.now();
      const reqs = apRequests(ctx.proxy.since(mark));
      const st = stall as { sockets: number; dropped: number } | null;
      check(st !== null && st.sockets === 1, `the stall was not injected into one socket (${st ? st.sockets : 'no AP Request seen'})`);
      check(st.dropped >= 1, 'the stalled socket dropped nothing: the SC sent no AP Reply into it');
      const recreated = (c(s1).socketsRecreated ?? 0) - r0;
      check(recreated === 1, `socketsRecreated +${recreated} at the abort, expected +1`);
      check(c(s1).sessionsEstablished === c(s0).sessionsEstablished, 'the CTA established a session through the stalled socket');
      check(reqs.length === 1 + ctx.timers.retransmitMs.length, `AP Requests on the wire: ${reqs.length}, expected ${1 + ctx.timers.retransmitMs.length} (no retry: the protocol's timers are unchanged)`);
      check(reqs.every((r) => ctEqual(r.data, reqs[0].data)), 'retransmitted AP Requests differ');
      check(c(s1).retransmits - c(s0).retransmits === ctx.timers.retransmitMs.length, `retransmissions: ${c(s1).retransmits - c(s0).retransmits}, expected ${ctx.timers.retransmitMs.length}`);
      const sinceFirst = done - reqs[0].at;
      check(sinceFirst + 20 >= ctx.timers.abortMs, `aborted ${sinceFirst} ms after the first AP Request, before ${ctx.timers.abortMs} ms`);
      const lost = st.dropped;
      // The SC got no SA Recovered: after its timeout it wakes the CTA again. That Wake Up and
      // the exchange it starts reach the CTA only on the re-created socket (the stalled one
      // stays stalled: without the re-creation this times out).
      const mark2 = ctx.proxy.total;
      const e = await established(ctx, ctx.saRecoveredTimeoutMs + ctx.exchangeTimeoutMs, "the SC's next Wake Up to complete on the re-created socket").catch(async (err: Error) => {
        throw new Check(`${err.message}; wire: ${seq(ctx.proxy.since(mark2))}; dropped in the stalled socket ${(stall as { dropped: number }).dropped}`);
      });
      const s2 = await until(ctx, (s) => c(s).sessionsEstablished > c(s1).sessionsEstablished && s.scs[0]?.state === 'established', ctx.exchangeTimeoutMs, 'the CTA to count the session');
      check(s2.scs[0].sa!.scSpi === e.scSpi, 'SPIs differ between the CTA and the SC');
      check((c(s2).socketsRecreated ?? 0) - r0 === 1, `socketsRecreated +${(c(s2).socketsRecreated ?? 0) - r0} after the next exchange, expected +1`);
      return {
        details: [
          `socket stalled at the AP Request: ${lost} datagram(s) lost in it; ${reqs.length} identical AP Request(s); abort seen ${sinceFirst} ms after the first (timeout ${ctx.timers.abortMs} ms), socketsRecreated +${recreated}`,
          `the SC woke the CTA again after its SA Recovered timeout: established on the re-created socket in ${e.latencyMs} ms (socketsRecreated now ${c(s2).socketsRecreated})`,
        ],
      };
    } finally {
      ctx.proxy.filter = null;
    }
  },
};

/**
 * Issue 13 item 4 on the target: Wake Ups forged from the SC's host (the right principal,
 * fresh nonces, another port) stream in at about 200 a second while the SC wakes the CTA.
 * The CTA was provisioned with the SC's HOST:PORT, so it drops every forged one
 * (wrong_address) and the genuine exchange completes on its first Wake Up.
 */
export const forgedStream: Scenario = {
  name: 'forged-wake-stream',
  title: 'Wake Ups forged from the SC host at ~200/s (or half what the device can drop): the genuine exchange completes on its first Wake Up, none forged is answered',
  async run(ctx) {
    const idle0 = await idle(ctx);
    const attacker = dgram.createSocket('udp4');
    await new Promise<void>((r) => attacker.bind({ port: 0, address: '127.0.0.1' }, () => r()));
    const forged = (n: number) => encodeWakeUp({ kmmid: KMMID.WAKE_UP, doi: DOI.IPSEC, serverNonce: 0x20000000 + n, serverPrincipal: ctx.scPrincipal });
    // How fast this device drops them: 100 at once, timed until counted. A stream faster than
    // that only queues up in front of the genuine Wake Up (no CTA design can help then), so the
    // stream runs at 200/s or at half the measured rate, whichever is lower, and says which.
    const tp = Date.now();
    for (let i = 0; i < 100; i++) attacker.send(forged(1000000 + i), ctx.device.kmPort, '127.0.0.1');
    const s0 = await until(ctx, (s) => drops(s, 'wrong_address') - drops(idle0, 'wrong_address') >= 100, ctx.exchangeTimeoutMs * 4, 'the CTA to drop 100 forged Wake Ups');
    const dropRate = Math.round(100000 / Math.max(1, Date.now() - tp));
    const rate = Math.min(200, Math.floor(dropRate / 2));
    const answeredToAttacker: number[] = [];
    attacker.on('message', (m) => answeredToAttacker.push(m[0]));
    const wakes: number[] = [];
    const onWake = (w: { principal: string; attempt: number }) => {
      if (w.principal === ctx.ctaPrincipal) wakes.push(w.attempt);
    };
    let flooding = true;
    let sent = 0;
    const stream = (async () => {
      // `rate` per second, in steps of 10 ms.
      const t0 = Date.now();
      while (flooding) {
        const due = Math.floor(((Date.now() - t0) * rate) / 1000);
        while (sent < due) attacker.send(forged(sent++), ctx.device.kmPort, '127.0.0.1');
        await sleep(10);
      }
    })();
    let latency: number | null = null;
    const mark = ctx.proxy.total;
    try {
      await sleep(500); // the stream is well under way
      ctx.sc.on('wake', onWake);
      const e = await wakeEstablished(ctx, ctx.exchangeTimeoutMs, 'the genuine exchange under the forged stream');
      latency = e.latencyMs;
      await sleep(200);
    } finally {
      flooding = false;
      await stream;
      ctx.sc.off('wake', onWake);
      attacker.close();
    }
    const s1 = await sessionCounted(ctx, s0);
    check(wakes.length === 1 && wakes[0] === 0, `the SC sent Wake Up attempts [${wakes.join(', ')}]: the genuine exchange needed a retry`);
    const reqs = apRequests(ctx.proxy.since(mark));
    check(reqs.length === 1, `${reqs.length} AP Requests reached the SC (expected the one genuine answer)`);
    check(answeredToAttacker.length === 0, `${answeredToAttacker.length} datagrams went back to the forger`);
    const dropped = drops(s1, 'wrong_address') - drops(s0, 'wrong_address');
    check(dropped >= 1, 'no forged Wake Up was counted as wrong_address');
    check(c(s1).wakeUps - c(s0).wakeUps === 1, `${c(s1).wakeUps - c(s0).wakeUps} Wake Ups taken (only the genuine one should be)`);
    return {
      details: [
        `device drops forged Wake Ups at about ${dropRate}/s; stream at ${rate}/s${rate < 200 ? ' (half of that: this target is slower than 200/s)' : ''}: ${sent} sent, ${dropped} counted as wrong_address; genuine exchange established on its first Wake Up in ${latency} ms`,
      ],
    };
  },
};
