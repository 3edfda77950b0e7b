// Bytes as the board sees them: a firmware value (string, array, typed array, {data,count},
// {callback}) flattened to bytes as Espruino does, and bytes back to a binary string.
// Shared by the Storage, dgram and serial stand-ins and E.toUint8Array / E.toString.

/** Bytes of a value as Espruino's JSV_GET_AS_CHAR_ARRAY / E.toUint8Array see them. */
export function bytesOf(v: unknown, out: number[] = [], depth = 0): number[] {
  if (depth > 16) throw new Error('data nested too deeply');
  if (typeof v === 'number' || typeof v === 'boolean') out.push(Number(v) & 0xff);
  else if (typeof v === 'string') for (let i = 0; i < v.length; i++) out.push(v.charCodeAt(i) & 0xff);
  else if (Array.isArray(v)) for (const x of v) bytesOf(x, out, depth + 1);
  else if (ArrayBuffer.isView(v)) {
    const u = new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
    if (v instanceof Uint8Array || Object.prototype.toString.call(v) === '[object Uint8Array]') for (const x of u) out.push(x);
    else for (let i = 0; i < (v as unknown as ArrayLike<number>).length; i++) out.push(Number((v as unknown as ArrayLike<number>)[i]) & 0xff);
  } else if (v && typeof v === 'object' && Object.prototype.toString.call(v) === '[object ArrayBuffer]') for (const x of new Uint8Array(v as ArrayBuffer)) out.push(x);
  else if (v && typeof v === 'object' && 'data' in (v as object)) {
    const o = v as { data: unknown; count?: number };
    const c = o.count ?? 1;
    for (let i = 0; i < c; i++) bytesOf(o.data, out, depth + 1);
  } else if (v && typeof v === 'object' && 'callback' in (v as object)) bytesOf((v as { callback: () => unknown }).callback(), out, depth + 1);
  return out;
}

export function latin1(b: Uint8Array | number[]): string {
  return Buffer.from(b as Uint8Array).toString('latin1');
}
