// The pending-session table: a FIXED number of slots in two preallocated typed
// arrays -- the whole-number fields (states, nonces, SPIs, seconds, ports: all
// unsigned 32-bit) in a Uint32Array, the two wall-clock times in ms in a
// Float64Array (they do not fit 32 bits) -- plus preallocated reference arrays for
// per-session objects (the AP Request bytes to retransmit, the ticket it was built
// from, the reply address). Nothing here grows: a full table makes alloc() return
// -1, and the caller drops and counts. (One Float64Array for every field took 8
// bytes per field and slot; the board's variable store pays for every byte.)
// Written inside the Espruino subset.

// Field numbers inside one slot: 0..FIELDS-1 in the Uint32Array, then the ms times.
export const F_STATE = 0;
export const F_SC = 1; // index into config.scs
export const F_NONCE = 2; // the nonce to echo (0 = client-initiated)
export const F_RETRIES = 3; // retransmissions / attempts done
export const F_KIND = 4;
export const F_CTIME = 5; // authenticator ctime, seconds
export const F_CUSEC = 6; // authenticator cusec
export const F_SPI = 7; // CTA inbound SPI offered in this AP Request
export const F_FLAGS = 8;
export const F_GEN = 9; // generation, bumped on every (re)use of the slot
export const F_PORT = 10; // reply port (from the trigger)
export const FIELDS = 11;
export const F_DEADLINE = 11; // ms (adjusted wall clock is NOT used: platform clock)
export const F_STARTED = 12; // ms, when the session was opened

// F_STATE values.
export const S_FREE = 0;
export const S_TICKET = 1; // waiting for the KDC
export const S_AP_REQ_SENT = 2; // waiting for the AP Reply

// F_KIND values.
export const K_WAKE = 1;
export const K_REKEY = 2;
export const K_CLIENT = 3;

// F_FLAGS bits.
export const FL_SKEW_ADOPTED = 1;
export const FL_TKT_REFRESHED = 2;

export class SessionTable {
  n: number;
  /** The 32-bit fields, FIELDS per slot. */
  f: Uint32Array;
  /** F_DEADLINE and F_STARTED, two per slot. */
  slotTimes: Float64Array;
  /** The AP Request bytes of each slot (retransmitted byte-identical). */
  req: (Uint8Array | null | undefined)[];
  /** The ticket-cache entry the slot's AP Request was built from. */
  tkt: (unknown | null | undefined)[];
  /** The address to answer (from the trigger), per slot. */
  addr: (string | null | undefined)[];

  constructor(slots: number) {
    this.n = slots;
    this.f = new Uint32Array(slots * FIELDS);
    this.slotTimes = new Float64Array(slots * 2);
    // Sparse (an empty slot holds no element): on the interpreter an element costs a
    // variable or two, so the idle slots of a large table cost nothing here.
    this.req = new Array(slots);
    this.tkt = new Array(slots);
    this.addr = new Array(slots);
  }

  get(i: number, field: number): number {
    return field < FIELDS ? this.f[i * FIELDS + field] : this.slotTimes[i * 2 + field - FIELDS];
  }
  set(i: number, field: number, v: number): void {
    if (field < FIELDS) this.f[i * FIELDS + field] = v;
    else this.slotTimes[i * 2 + field - FIELDS] = v;
  }
  state(i: number): number {
    return this.f[i * FIELDS + F_STATE];
  }

  /** The slot pending for SC index `sc`, or -1. */
  findBySc(sc: number): number {
    const f = this.f;
    for (let i = 0; i < this.n; i++) {
      const o = i * FIELDS;
      if (f[o + F_STATE] !== S_FREE && f[o + F_SC] === sc) return i;
    }
    return -1;
  }

  /** Any slot in state `st`? (cheap pre-check before decoding a reply) */
  anyIn(st: number): boolean {
    const f = this.f;
    for (let i = 0; i < this.n; i++) if (f[i * FIELDS + F_STATE] === st) return true;
    return false;
  }

  /** A free slot (cleared, generation bumped), or -1 when the table is full. */
  alloc(): number {
    const f = this.f;
    for (let i = 0; i < this.n; i++) {
      if (f[i * FIELDS + F_STATE] === S_FREE) {
        this.reset(i);
        return i;
      }
    }
    return -1;
  }

  /** Clears slot i for reuse (keeps and bumps its generation). */
  reset(i: number): void {
    const o = i * FIELDS;
    const gen = this.f[o + F_GEN] + 1;
    this.f.fill(0, o, o + FIELDS);
    this.f[o + F_GEN] = gen;
    this.slotTimes[i * 2] = 0;
    this.slotTimes[i * 2 + 1] = 0;
    delete this.req[i];
    delete this.tkt[i];
    delete this.addr[i];
  }

  free(i: number): void {
    this.reset(i);
  }

  inUse(): number {
    let c = 0;
    for (let i = 0; i < this.n; i++) if (this.f[i * FIELDS + F_STATE] !== S_FREE) c++;
    return c;
  }

  /** Earliest deadline of any busy slot, or -1. */
  earliest(): number {
    let best = -1;
    for (let i = 0; i < this.n; i++) {
      const o = i * FIELDS;
      if (this.f[o + F_STATE] !== S_FREE) {
        const d = this.slotTimes[i * 2 + F_DEADLINE - FIELDS];
        if (best < 0 || d < best) best = d;
      }
    }
    return best;
  }
}
