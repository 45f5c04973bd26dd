/**
 * Image checks for ingest: type by magic bytes, dimensions from the header, size limits, and a
 * 64-bit difference hash (dHash) for near-duplicate detection. A corrupt image is a verdict with a
 * reason, never an exception.
 */
import jpeg from "jpeg-js";
import { PNG } from "pngjs";
import type { ImageRef } from "../records/index.ts";
import { sha256Hex } from "../records/index.ts";
import { type MediaType, sniffType } from "./sniff.ts";

export { sniffType };

export const MAX_IMAGE_BYTES = 20 * 1024 * 1024;
export const MAX_IMAGE_SIDE = 12000;

export type ImageCheck =
  | { ok: true; ref: ImageRef & { dhash: string | null } }
  | { ok: false; reason: "unsupported_image_type" | "corrupt_image" | "image_too_large" | "empty_image" };

function dims(b: Uint8Array, type: MediaType): [number, number] | null {
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  try {
    if (type === "image/png") {
      if (String.fromCharCode(...b.subarray(12, 16)) !== "IHDR") return null;
      return [dv.getUint32(16), dv.getUint32(20)];
    }
    if (type === "image/gif") return [dv.getUint16(6, true), dv.getUint16(8, true)];
    if (type === "image/webp") {
      const chunk = String.fromCharCode(...b.subarray(12, 16));
      if (chunk === "VP8X")
        return [1 + (dv.getUint32(24, true) & 0xffffff), 1 + (dv.getUint32(27, true) & 0xffffff)];
      if (chunk === "VP8L") {
        const bits = dv.getUint32(21, true);
        return [1 + (bits & 0x3fff), 1 + ((bits >> 14) & 0x3fff)];
      }
      if (chunk === "VP8 ") return [dv.getUint16(26, true) & 0x3fff, dv.getUint16(28, true) & 0x3fff];
      return null;
    }
    // JPEG: walk the segments to a start-of-frame marker.
    let i = 2;
    while (i + 9 < b.length) {
      if (b[i] !== 0xff) return null;
      const marker = b[i + 1]!;
      const len = dv.getUint16(i + 2);
      if (marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc) {
        return [dv.getUint16(i + 7), dv.getUint16(i + 5)];
      }
      i += 2 + len;
    }
    return null;
  } catch {
    return null;
  }
}

/** Grayscale pixels of a PNG or JPEG, or null when it cannot be decoded. */
function decodeGray(b: Uint8Array, type: MediaType): { w: number; h: number; gray: Float64Array } | null {
  try {
    let w: number;
    let h: number;
    let data: Uint8Array;
    if (type === "image/png") {
      const png = PNG.sync.read(Buffer.from(b.buffer, b.byteOffset, b.byteLength));
      ({ width: w, height: h } = png);
      data = png.data;
    } else if (type === "image/jpeg") {
      const img = jpeg.decode(b, { useTArray: true, maxResolutionInMP: 150, maxMemoryUsageInMB: 1024 });
      ({ width: w, height: h } = img);
      data = img.data;
    } else return null;
    const gray = new Float64Array(w * h);
    for (let p = 0; p < w * h; p++) {
      const a = data[p * 4 + 3]! / 255;
      // Transparent pixels count as white, the colour they show on a page.
      gray[p] =
        (0.299 * data[p * 4]! + 0.587 * data[p * 4 + 1]! + 0.114 * data[p * 4 + 2]!) * a + 255 * (1 - a);
    }
    return { w, h, gray };
  } catch {
    return null;
  }
}

/**
 * dHash on a 17x16 grid of area-averaged grayscale: one bit per horizontal gradient, 256 bits
 * (64 hex chars). The common 9x8 grid cannot tell two charts of the same layout apart; 16x16 sees
 * changed bars and labels while staying stable under re-encoding and resizing.
 */
export const DHASH_BITS = 256;
function dhash(img: { w: number; h: number; gray: Float64Array }): string {
  const cols = 17;
  const rows = 16;
  const cell = new Float64Array(cols * rows);
  for (let r = 0; r < rows; r++) {
    const y0 = Math.floor((r * img.h) / rows);
    const y1 = Math.max(y0 + 1, Math.floor(((r + 1) * img.h) / rows));
    for (let c = 0; c < cols; c++) {
      const x0 = Math.floor((c * img.w) / cols);
      const x1 = Math.max(x0 + 1, Math.floor(((c + 1) * img.w) / cols));
      let sum = 0;
      for (let y = y0; y < y1; y++) for (let x = x0; x < x1; x++) sum += img.gray[y * img.w + x]!;
      cell[r * cols + c] = sum / ((y1 - y0) * (x1 - x0));
    }
  }
  let bits = 0n;
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < 8; c++)
      bits = (bits << 1n) | (cell[r * cols + c]! > cell[r * cols + c + 1]! ? 1n : 0n);
  }
  return bits.toString(16).padStart(16, "0");
}

export function hammingHex(a: string, b: string): number {
  let x = BigInt(`0x${a}`) ^ BigInt(`0x${b}`);
  let n = 0;
  while (x) {
    n += Number(x & 1n);
    x >>= 1n;
  }
  return n;
}

/** Checks an image and describes it; `dhash` is null for types we do not decode (WebP, GIF). */
export function checkImage(bytes: Uint8Array): ImageCheck {
  if (bytes.length === 0) return { ok: false, reason: "empty_image" };
  if (bytes.length > MAX_IMAGE_BYTES) return { ok: false, reason: "image_too_large" };
  const mediaType = sniffType(bytes);
  if (!mediaType) return { ok: false, reason: "unsupported_image_type" };
  const size = dims(bytes, mediaType);
  if (!size || size[0] <= 0 || size[1] <= 0) return { ok: false, reason: "corrupt_image" };
  if (size[0] > MAX_IMAGE_SIDE || size[1] > MAX_IMAGE_SIDE) return { ok: false, reason: "image_too_large" };
  let hash: string | null = null;
  if (mediaType === "image/png" || mediaType === "image/jpeg") {
    const gray = decodeGray(bytes, mediaType);
    if (!gray) return { ok: false, reason: "corrupt_image" };
    hash = dhash(gray);
  }
  return {
    ok: true,
    ref: {
      sha256: sha256Hex(bytes),
      mediaType,
      width: size[0],
      height: size[1],
      bytes: bytes.length,
      dhash: hash,
    },
  };
}
