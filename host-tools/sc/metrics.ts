// Counters and the exchange-latency histogram of the SC, rendered as Prometheus
// text (exposition format 0.0.4). Counter families have one label each; values
// are plain numbers in small objects so the hot path is a property increment.

/** One counter (family, label value) kept as a plain number field: the hot path's increment is c.n++. */
export type Counter = { n: number };

export type CounterFamily = { help: string; label: string; values: { [labelValue: string]: number } };

/** Latency buckets in seconds (Wake Up sent -> SA established). */
export const LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

export class Metrics {
  readonly families: { [name: string]: CounterFamily } = {
    cta_sc_rx_total: { help: 'Datagrams received, by message kind', label: 'kind', values: {} },
    cta_sc_tx_total: { help: 'Datagrams sent, by message kind', label: 'kind', values: {} },
    cta_sc_ap_requests_total: { help: 'AP Requests by outcome', label: 'outcome', values: {} },
    cta_sc_drops_total: { help: 'Datagrams dropped without a reply, by reason', label: 'reason', values: {} },
    cta_sc_error_replies_total: { help: 'Error Replies (KRB-ERROR) sent, by Kerberos error code', label: 'code', values: {} },
    cta_sc_exchanges_total: { help: 'Key management exchanges by outcome', label: 'outcome', values: {} },
    cta_sc_signaling_total: { help: 'Protected signaling transactions by outcome', label: 'outcome', values: {} },
  };
  /** Cumulative-at-render histogram: counts per bucket (non-cumulative here), +Inf last. */
  readonly latencyCounts = new Array<number>(LATENCY_BUCKETS.length + 1).fill(0);
  latencySum = 0;
  latencyCount = 0;

  private cells: { family: string; label: string; c: Counter }[] = [];

  /** A counter cell for (family, label value); its count joins the family's at every read. */
  counter(family: string, labelValue: string): Counter {
    if (!this.families[family]) throw new Error(`no counter family ${family}`);
    const c: Counter = { n: 0 };
    this.cells.push({ family, label: labelValue, c });
    return c;
  }
  /** Moves the cells' counts into the families (a key appears once its count is > 0, as with inc()). */
  private fold(): void {
    for (const e of this.cells) {
      if (e.c.n !== 0) {
        const v = this.families[e.family].values;
        v[e.label] = (v[e.label] || 0) + e.c.n;
        e.c.n = 0;
      }
    }
  }

  inc(family: string, labelValue: string, by = 1): void {
    const v = this.families[family].values;
    v[labelValue] = (v[labelValue] || 0) + by;
  }
  get(family: string, labelValue: string): number {
    this.fold();
    return this.families[family].values[labelValue] || 0;
  }
  observeLatency(seconds: number): void {
    let i = 0;
    while (i < LATENCY_BUCKETS.length && seconds > LATENCY_BUCKETS[i]) i++;
    this.latencyCounts[i]++;
    this.latencySum += seconds;
    this.latencyCount++;
  }
  /** A plain snapshot: { family: { labelValue: n } } plus latency. */
  snapshot(): { [family: string]: { [labelValue: string]: number } } & { latency: { count: number; sum: number } } {
    this.fold();
    const out: { [family: string]: { [labelValue: string]: number } } = {};
    for (const name of Object.keys(this.families)) out[name] = { ...this.families[name].values };
    return Object.assign(out, { latency: { count: this.latencyCount, sum: this.latencySum } }) as never;
  }
  /** Prometheus text; gauges are supplied by the caller (registry size etc.). */
  render(gauges: { [name: string]: { help: string; value: number } } = {}): string {
    this.fold();
    const lines: string[] = [];
    for (const name of Object.keys(this.families)) {
      const f = this.families[name];
      lines.push(`# HELP ${name} ${f.help}`, `# TYPE ${name} counter`);
      for (const lv of Object.keys(f.values).sort()) lines.push(`${name}{${f.label}="${escapeLabel(lv)}"} ${f.values[lv]}`);
    }
    const h = 'cta_sc_exchange_latency_seconds';
    lines.push(`# HELP ${h} Time from the first Wake Up (or Rekey) of an exchange to SA established`, `# TYPE ${h} histogram`);
    let cum = 0;
    for (let i = 0; i < LATENCY_BUCKETS.length; i++) {
      cum += this.latencyCounts[i];
      lines.push(`${h}_bucket{le="${LATENCY_BUCKETS[i]}"} ${cum}`);
    }
    cum += this.latencyCounts[LATENCY_BUCKETS.length];
    lines.push(`${h}_bucket{le="+Inf"} ${cum}`, `${h}_sum ${this.latencySum}`, `${h}_count ${this.latencyCount}`);
    for (const name of Object.keys(gauges)) {
      lines.push(`# HELP ${name} ${gauges[name].help}`, `# TYPE ${name} gauge`, `${name} ${gauges[name].value}`);
    }
    return lines.join('\n') + '\n';
  }
}

function escapeLabel(s: string): string {
  return s.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}
