// Independent decoder cross-check: asn1js parses what we encode, and the tree
// it sees equals the tree RFC 4120 prescribes for the same values (built in
// test/helpers/asn1.ts from the RFC's ASN.1, with BigInt integers and Node's
// Date for the time strings, not from our encoder).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as asn1js from 'asn1js';
import * as k from '../firmware/proto/krb5.ts';
import {
  R,
  parseTree,
  asReqFull,
  asReqMin,
  apReq,
  apRep,
  krbErrorFull,
  krbErrorMin,
  ticket,
  encTicketPartFull,
  encTicketPartMin,
  authenticatorFull,
  authenticatorMin,
  encApRepPartFull,
  encApRepPartMin,
  T0,
} from './helpers/asn1.ts';

const cases: [string, Uint8Array, ReturnType<typeof R.ticket>][] = [
  ['AS-REQ (full)', k.encodeAsReq(asReqFull), R.asReq(asReqFull)],
  ['AS-REQ (min)', k.encodeAsReq(asReqMin), R.asReq(asReqMin)],
  ['AP-REQ', k.encodeApReq(apReq), R.apReq(apReq)],
  ['AP-REP', k.encodeApRep(apRep), R.apRep(apRep)],
  ['KRB-ERROR (full)', k.encodeKrbError(krbErrorFull), R.krbError(krbErrorFull)],
  ['KRB-ERROR (min)', k.encodeKrbError(krbErrorMin), R.krbError(krbErrorMin)],
  ['Ticket', k.encodeTicket(ticket), R.ticket(ticket)],
  ['EncTicketPart (full)', k.encodeEncTicketPart(encTicketPartFull), R.encTicketPart(encTicketPartFull)],
  ['EncTicketPart (min)', k.encodeEncTicketPart(encTicketPartMin), R.encTicketPart(encTicketPartMin)],
  ['Authenticator (full)', k.encodeAuthenticator(authenticatorFull), R.authenticator(authenticatorFull)],
  ['Authenticator (min)', k.encodeAuthenticator(authenticatorMin), R.authenticator(authenticatorMin)],
  ['EncAPRepPart (full)', k.encodeEncApRepPart(encApRepPartFull), R.encApRepPart(encApRepPartFull)],
  ['EncAPRepPart (min)', k.encodeEncApRepPart(encApRepPartMin), R.encApRepPart(encApRepPartMin)],
];

for (const [name, bytes, want] of cases) {
  test(`asn1js sees the RFC 4120 structure of ${name}`, () => {
    assert.deepEqual(parseTree(bytes), want);
  });
}

test('asn1js typed views: integers, strings, times and flags carry our values', () => {
  const r = asn1js.fromBER(k.encodeKrbError(krbErrorFull));
  assert.equal(r.offset, k.encodeKrbError(krbErrorFull).length);
  const app = r.result as asn1js.Constructed;
  assert.equal(app.idBlock.tagClass, 2); // application
  assert.equal(app.idBlock.tagNumber, 30);
  const seq = app.valueBlock.value[0] as asn1js.Sequence;
  const field = (n: number) => {
    const f = seq.valueBlock.value.find((x) => x.idBlock.tagClass === 3 && x.idBlock.tagNumber === n) as asn1js.Constructed;
    return f.valueBlock.value[0];
  };
  assert.equal((field(0) as asn1js.Integer).toBigInt(), 5n);
  assert.equal((field(1) as asn1js.Integer).toBigInt(), 30n);
  assert.equal((field(2) as asn1js.GeneralizedTime).toDate().getTime(), krbErrorFull.ctime);
  assert.equal((field(4) as asn1js.GeneralizedTime).toDate().getTime(), T0);
  assert.equal((field(5) as asn1js.Integer).toBigInt(), BigInt(krbErrorFull.susec));
  assert.equal((field(6) as asn1js.Integer).toBigInt(), 25n);
  assert.equal((field(7) as asn1js.GeneralString).getValue(), 'EXAMPLE.NET');
  assert.equal((field(11) as asn1js.GeneralString).getValue(), krbErrorFull.eText);
  assert.deepEqual(new Uint8Array((field(12) as asn1js.OctetString).getValue()), krbErrorFull.eData);

  const ap = asn1js.fromBER(k.encodeApReq(apReq)).result as asn1js.Constructed;
  const apSeq = ap.valueBlock.value[0] as asn1js.Sequence;
  const opts = (apSeq.valueBlock.value[2] as asn1js.Constructed).valueBlock.value[0] as asn1js.BitString;
  assert.equal(opts.valueBlock.unusedBits, 0);
  assert.deepEqual([...opts.valueBlock.valueHexView], [0x20, 0, 0, 0]);
  const tkt = (apSeq.valueBlock.value[3] as asn1js.Constructed).valueBlock.value[0];
  assert.equal(tkt.idBlock.tagClass, 2);
  assert.equal(tkt.idBlock.tagNumber, 1);

  // UInt32 values above 2^31 are positive INTEGERs (leading zero byte).
  const auth = asn1js.fromBER(k.encodeAuthenticator(authenticatorFull)).result as asn1js.Constructed;
  const aSeq = auth.valueBlock.value[0] as asn1js.Sequence;
  const seqNo = aSeq.valueBlock.value.find((x) => x.idBlock.tagNumber === 7) as asn1js.Constructed;
  assert.equal((seqNo.valueBlock.value[0] as asn1js.Integer).toBigInt(), BigInt(authenticatorFull.seqNumber!));
});
