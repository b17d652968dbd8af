/**
 * Ethernet frames over a byte stream as QEMU 7.2's `-netdev stream` (and the older `-netdev
 * socket`) frame them: each frame preceded by its length as a 4-byte big-endian number. Over
 * datagrams (`-netdev dgram`) a frame is one datagram, unframed. The decoder takes untrusted
 * bytes in any chunks and refuses a length QEMU would refuse (0, or more than its 68 KiB
 * receive buffer) with a one-line VirtusError, after which the link must be closed.
 */
import { VirtusError } from '../util/errors.ts';

/** QEMU's NET_BUFSIZE (net/net.h): the largest frame a stream peer may announce. */
export const STREAM_MAX_FRAME = 4096 + 65536;

/** The 4-byte length prefix and the frame, ready to write. */
export function encodeStream(frame: Uint8Array): Uint8Array {
  const out = new Uint8Array(4 + frame.length);
  new DataView(out.buffer).setUint32(0, frame.length);
  out.set(frame, 4);
  return out;
}

/** Splits a byte stream into frames. */
export class StreamDecoder {
  private head = new Uint8Array(4);
  private headLen = 0;
  private frame: Uint8Array | null = null;
  private got = 0;
  private failed = false;

  /** The whole frames `bytes` completes (copies); throws VirtusError('NET_STREAM') on a bad length. */
  push(bytes: Uint8Array): Uint8Array[] {
    if (this.failed) throw new VirtusError('NET_STREAM', 'the stream already broke its framing');
    const out: Uint8Array[] = [];
    let i = 0;
    while (i < bytes.length) {
      if (!this.frame) {
        const n = Math.min(4 - this.headLen, bytes.length - i);
        this.head.set(bytes.subarray(i, i + n), this.headLen);
        this.headLen += n;
        i += n;
        if (this.headLen < 4) break;
        const len = new DataView(this.head.buffer).getUint32(0);
        this.headLen = 0;
        if (len === 0 || len > STREAM_MAX_FRAME) {
          this.failed = true;
          throw new VirtusError('NET_STREAM', `the peer announced a frame of ${len} bytes (expected 1 to ${STREAM_MAX_FRAME}): not a QEMU stream netdev`);
        }
        this.frame = new Uint8Array(len);
        this.got = 0;
      }
      const n = Math.min(this.frame.length - this.got, bytes.length - i);
      this.frame.set(bytes.subarray(i, i + n), this.got);
      this.got += n;
      i += n;
      if (this.got === this.frame.length) {
        out.push(this.frame);
        this.frame = null;
      }
    }
    return out;
  }
}
