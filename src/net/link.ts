/**
 * A backend that carries frames unchanged to a peer over some transport (a stream or
 * datagram socket, a switch port): what the guest sends goes out as wire frames (the device
 * finishes checksums and cuts TSO segments first), what arrives is handed to the NIC. The
 * host owns the socket; it calls `input` with each frame and `down` when the link breaks.
 */
import type { NetBackend, NetReceiver } from '../util/net-backend.ts';

export class FrameLink implements NetBackend {
  readonly acceptsOffload = false;
  readonly producesLargeFrames = false;
  private rx: NetReceiver | null = null;
  private out: ((frame: Uint8Array) => void) | null = null;
  private readonly stats = { 'link frames out': 0, 'link frames in': 0, 'link frames lost': 0, 'link breaks': 0 };

  constructor(
    readonly name: string,
    private readonly h: { wake(): void; close(): void },
  ) {}

  attach(rx: NetReceiver): void {
    this.rx = rx;
  }

  /** The transport is ready to carry frames (null: it is not, frames are lost as on an unplugged cable). */
  connect(out: ((frame: Uint8Array) => void) | null): void {
    this.out = out;
  }

  /** The link broke (counted; frames are lost until connect() again). */
  down(): void {
    this.out = null;
    this.stats['link breaks']++;
  }

  send(frame: Uint8Array): void {
    if (!this.out) {
      this.stats['link frames lost']++;
      return;
    }
    this.stats['link frames out']++;
    this.out(frame);
  }

  /** A frame from the peer. */
  input(frame: Uint8Array): void {
    this.stats['link frames in']++;
    this.rx?.receive(frame);
    this.h.wake();
  }

  counters(): Record<string, number> {
    return { ...this.stats };
  }

  close(): void {
    this.out = null;
    this.h.close();
  }
}
