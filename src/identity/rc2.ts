// RC2-CBC decryption (RFC 2268), for PKCS#12 files from older exporters
// (OpenSSL 1.x, `openssl pkcs12 -legacy`, some Keychain exports) that encrypt
// the certificate bag with pbeWithSHAAnd40BitRC2-CBC. OpenSSL 3 ships RC2
// only in its legacy provider, which Node does not load, so it is here.
// Decryption only: Orchard never produces RC2.

// PITABLE, RFC 2268 section 2: a permutation of 0..255 derived from pi.
const PITABLE = Uint8Array.from(
  Buffer.from(
    "d978f9c419ddb5ed28e9fd794aa0d89dc67e37832b76538e624c6488448bfba2179a59f587b34f1361456d8d09817d32" +
      "bd8f40eb86b77b0bf09521225c6b4e8254d66593ce60b21c7356c014a78cf1dc1275ca1f3bbee4d1423dd430a33cb626" +
      "6fbf0eda4669075727f21d9bbc944303f811c7f690ef3ee706c3d52fc8661ed708e8eade8052eef784aa72ac354d6a2a" +
      "961ad2715a1549744b9fd05e0418a4ecc2e0416e0f51cbcc2491af50a1f47039997c3a8523b8b47afc02365b25559731" +
      "2d5dfa98e38a92ae05df2910676cbac9d300e6cfe19ea82c6316013f58e289a90d38341bab33ffb0bb480c5fb9b1cd2e" +
      "c5f3db47e5a59c770aa62068fe7fc1ad",
    "hex",
  ),
);

/** The 64 round keys for a key and its effective bit length (RFC 2268 section 2). */
function expandKey(key: Uint8Array, effectiveBits: number): Uint16Array {
  if (key.length < 1 || key.length > 128) throw new RangeError("RC2 key must be 1 to 128 bytes");
  const L = new Uint8Array(128);
  L.set(key);
  const T = key.length;
  for (let i = T; i < 128; i++) L[i] = PITABLE[(L[i - 1]! + L[i - T]!) & 0xff]!;
  const T8 = (effectiveBits + 7) >> 3;
  const TM = 0xff >> (8 * T8 - effectiveBits);
  L[128 - T8] = PITABLE[L[128 - T8]! & TM]!;
  for (let i = 127 - T8; i >= 0; i--) L[i] = PITABLE[L[i + 1]! ^ L[i + T8]!]!;
  const K = new Uint16Array(64);
  for (let i = 0; i < 64; i++) K[i] = L[2 * i]! | (L[2 * i + 1]! << 8);
  return K;
}

function decryptBlock(K: Uint16Array, block: Uint8Array, out: Uint8Array, at: number): void {
  let r0 = block[0]! | (block[1]! << 8);
  let r1 = block[2]! | (block[3]! << 8);
  let r2 = block[4]! | (block[5]! << 8);
  let r3 = block[6]! | (block[7]! << 8);
  let j = 63;
  const mix = () => {
    r3 = (((r3 >>> 5) | (r3 << 11)) - K[j--]! - (r2 & r1) - (~r2 & r0)) & 0xffff;
    r2 = (((r2 >>> 3) | (r2 << 13)) - K[j--]! - (r1 & r0) - (~r1 & r3)) & 0xffff;
    r1 = (((r1 >>> 2) | (r1 << 14)) - K[j--]! - (r0 & r3) - (~r0 & r2)) & 0xffff;
    r0 = (((r0 >>> 1) | (r0 << 15)) - K[j--]! - (r3 & r2) - (~r3 & r1)) & 0xffff;
  };
  const mash = () => {
    r3 = (r3 - K[r2 & 63]!) & 0xffff;
    r2 = (r2 - K[r1 & 63]!) & 0xffff;
    r1 = (r1 - K[r0 & 63]!) & 0xffff;
    r0 = (r0 - K[r3 & 63]!) & 0xffff;
  };
  for (let i = 0; i < 5; i++) mix();
  mash();
  for (let i = 0; i < 6; i++) mix();
  mash();
  for (let i = 0; i < 5; i++) mix();
  out[at] = r0 & 0xff;
  out[at + 1] = r0 >>> 8;
  out[at + 2] = r1 & 0xff;
  out[at + 3] = r1 >>> 8;
  out[at + 4] = r2 & 0xff;
  out[at + 5] = r2 >>> 8;
  out[at + 6] = r3 & 0xff;
  out[at + 7] = r3 >>> 8;
}

/** RC2-CBC with PKCS#7 padding removed; throws on a bad length or padding (a wrong key). */
export function rc2CbcDecrypt(key: Uint8Array, effectiveBits: number, iv: Uint8Array, data: Uint8Array): Buffer {
  if (data.length === 0 || data.length % 8 !== 0) throw new Error("RC2 ciphertext is not a whole number of blocks");
  const K = expandKey(key, effectiveBits);
  const out = Buffer.alloc(data.length);
  let prev = iv;
  for (let o = 0; o < data.length; o += 8) {
    const block = data.subarray(o, o + 8);
    decryptBlock(K, block, out, o);
    for (let i = 0; i < 8; i++) out[o + i]! ^= prev[i]!;
    prev = block;
  }
  const pad = out[out.length - 1]!;
  if (pad < 1 || pad > 8) throw new Error("bad padding");
  for (let i = out.length - pad; i < out.length; i++) if (out[i] !== pad) throw new Error("bad padding");
  return out.subarray(0, out.length - pad);
}
