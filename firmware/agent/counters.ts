// The agent's counters: one Uint32Array (agent.counterValues) indexed by these constants, the
// named object (agent.counters, status().counters) built from it on demand. They live
// in their own module because esbuild inlines a constant imported from another module
// but keeps a same-module one as a variable -- and on the interpreter each named
// counter would cost one or two variables for its key. Espruino subset.

// Build-time board fact (host-tools/build/build.ts boardDefines), tested inline as
// `(typeof BOARD_UDP === 'undefined' || BOARD_UDP)`: a board without UDP keeps no trace
// of the UDP-only counter (its name, its slot); outside a bundle it is kept.
declare const BOARD_UDP: boolean;

export const C_RX = 0;
export const C_TX = 1;
export const C_WAKE_UPS = 2;
export const C_REKEYS_ACCEPTED = 3;
export const C_REPLACED = 4;
export const C_AP_REQUESTS_SENT = 5;
export const C_RETRANSMITS = 6;
export const C_SESSIONS_ESTABLISHED = 7;
export const C_SESSIONS_ABORTED = 8;
export const C_SA_RECOVERED_SENT = 9;
export const C_AS_EXCHANGES = 10;
export const C_AS_REQUESTS_SENT = 11;
export const C_KDC_RETRANSMITS = 12;
export const C_KDC_FAILURES = 13;
export const C_TICKETS_CACHED = 14;
export const C_TICKET_REFRESHES = 15;
export const C_TICKET_PREFETCHES = 16;
export const C_SKEW_ADOPTED = 17;
export const C_KRB_ERRORS = 18;
export const C_CLIENT_INITIATED = 19;
export const C_SA_EXPIRED = 20;
export const C_SIGNALING_RECEIVED = 21;
export const C_SIGNALING_ANSWERED = 22;
export const N_COUNTERS = 23;

// Drop reasons (counters.drops keys), in the order of counterNames() after the counters; agent.counterValues[N_COUNTERS + D_X] counts X.
export const D_UNKNOWN_SC = 0;
export const D_WRONG_ADDRESS = 1;
export const D_NONCE_ZERO = 2;
export const D_TABLE_FULL = 3;
export const D_DUPLICATE = 4;
export const D_BAD_HMAC = 5;
export const D_MALFORMED = 6;
export const D_STALE_REKEY = 7;
export const D_NO_PENDING = 8;
export const D_NO_SESSION = 9;
export const D_BAD_AP_REP = 10;
export const D_NO_SUBKEY = 11;
export const D_BAD_CIPHERSUITE = 12;
export const D_UNEXPECTED = 13;
export const D_UNSUPPORTED_DOI = 14;
export const D_KDC_UNMATCHED = 15;
export const D_ESP_NO_SA = 16;
export const D_ESP_ICV = 17;
export const D_ESP_REPLAY = 18;
export const D_ESP_MALFORMED = 19;
export const D_INTERNAL = 20;
export const D_RATE_LIMITED = 21;
export const D_BUSY = 22;

// UDP boards only: after the drop reasons (index N_COUNTERS + D_BUSY + 1), so that a board
// without UDP has the same indexes and names as before it existed. Counts the sockets
// closed and bound again because they had gone quiet while an answer was awaited.
export const C_SOCKETS_RECREATED = 46; // N_COUNTERS + D_BUSY + 1, a literal: esbuild inlines only those

/**
 * Counter names (AgentCounters keys but drops) in C_ index order, then the drop reasons
 * (counters.drops keys) in D_ index order, then (UDP boards) socketsRecreated: name i counts in
 * agent.counterValues[i]. The names are one literal inside a function: with the code in flash
 * they cost no variables until asked for.
 */
export function counterNames(): string[] {
  return (
    'rx tx wakeUps rekeysAccepted replaced apRequestsSent retransmits sessionsEstablished sessionsAborted saRecoveredSent ' +
    'asExchanges asRequestsSent kdcRetransmits kdcFailures ticketsCached ticketRefreshes ticketPrefetches skewAdopted krbErrors ' +
    'clientInitiated saExpired signalingReceived signalingAnswered ' +
    'unknown_sc wrong_address nonce_zero table_full duplicate bad_hmac malformed stale_rekey no_pending no_session ' +
    'bad_ap_rep no_subkey bad_ciphersuite unexpected unsupported_doi kdc_unmatched esp_no_sa esp_icv esp_replay esp_malformed internal rate_limited busy' +
    (typeof BOARD_UDP === 'undefined' || BOARD_UDP ? ' socketsRecreated' : '')
  ).split(' ');
}
