// Minimal classic-pcap writer for handing our datagrams to tshark:
// Ethernet II + IPv4 (header checksum computed) + UDP (checksum 0 = none, legal
// over IPv4), every length field consistent with the payload.

export interface UdpPacket {
  /** dotted quad */
  src: string;
  dst: string;
  srcPort: number;
  dstPort: number;
  payload: Uint8Array;
  /** seconds since the epoch (default: index of the packet) */
  time?: number;
}

const LINKTYPE_ETHERNET = 1;

function ip4(a: string): number[] {
  const p = a.split('.').map((x) => Number(x));
  if (p.length !== 4 || p.some((x) => !(x >= 0 && x <= 255))) throw new Error(`bad IPv4 address ${a}`);
  return p;
}

function ipChecksum(h: Uint8Array): number {
  let s = 0;
  for (let i = 0; i < h.length; i += 2) s += (h[i] << 8) | h[i + 1];
  while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
  return ~s & 0xffff;
}

/** Ethernet + IPv4 + UDP frame around payload. */
export function udpFrame(p: UdpPacket, ipId: number): Uint8Array {
  const udpLen = 8 + p.payload.length;
  const ipLen = 20 + udpLen;
  if (ipLen > 65535) throw new Error('payload too large for one IPv4 datagram');
  const f = new Uint8Array(14 + ipLen);
  const dv = new DataView(f.buffer);
  // Ethernet: locally administered MACs, ethertype IPv4.
  f.set([0x02, 0, 0, 0, 0, 0x01, 0x02, 0, 0, 0, 0, 0x02], 0);
  dv.setUint16(12, 0x0800);
  const ip = 14;
  f[ip] = 0x45; // v4, IHL 5
  dv.setUint16(ip + 2, ipLen);
  dv.setUint16(ip + 4, ipId & 0xffff);
  dv.setUint16(ip + 6, 0x4000); // DF
  f[ip + 8] = 64; // TTL
  f[ip + 9] = 17; // UDP
  f.set(ip4(p.src), ip + 12);
  f.set(ip4(p.dst), ip + 16);
  dv.setUint16(ip + 10, ipChecksum(f.subarray(ip, ip + 20)));
  const u = ip + 20;
  dv.setUint16(u, p.srcPort);
  dv.setUint16(u + 2, p.dstPort);
  dv.setUint16(u + 4, udpLen);
  dv.setUint16(u + 6, 0);
  f.set(p.payload, u + 8);
  return f;
}

/** A whole pcap file (little-endian, microsecond timestamps) holding one frame per packet. */
export function writePcap(packets: UdpPacket[]): Uint8Array {
  const frames = packets.map((p, i) => udpFrame(p, i + 1));
  let total = 24;
  for (const fr of frames) total += 16 + fr.length;
  const out = new Uint8Array(total);
  const dv = new DataView(out.buffer);
  dv.setUint32(0, 0xa1b2c3d4, true);
  dv.setUint16(4, 2, true);
  dv.setUint16(6, 4, true);
  dv.setInt32(8, 0, true); // thiszone
  dv.setUint32(12, 0, true); // sigfigs
  dv.setUint32(16, 65535, true); // snaplen
  dv.setUint32(20, LINKTYPE_ETHERNET, true);
  let o = 24;
  frames.forEach((fr, i) => {
    const t = packets[i].time ?? 1700000000 + i;
    dv.setUint32(o, Math.floor(t), true);
    dv.setUint32(o + 4, Math.round((t - Math.floor(t)) * 1e6), true);
    dv.setUint32(o + 8, fr.length, true);
    dv.setUint32(o + 12, fr.length, true);
    out.set(fr, o + 16);
    o += 16 + fr.length;
  });
  return out;
}
