/**
 * The frame-level contract between a network device (virtio-net, devices/virtio/net/) and
 * what carries its frames (a user-mode NAT, a socket link to QEMU or another virtus, a switch:
 * net/). Both sides import it from here, the layer below them both (devices and net are peers).
 * Frames are whole Ethernet frames (destination MAC first, no preamble, no FCS). Direction
 * words are the guest's: `send` carries a frame the guest transmitted, `receive` hands the
 * device a frame for the guest. A backend calls `receive` from host events (socket data,
 * timers) between the machine's slices, then wakes the runner so an idle machine delivers the
 * frame at once. Nothing here imports a host API.
 */

/** The device side of a backend: where frames for the guest go. */
export interface NetReceiver {
  /**
   * A frame for the guest. The device copies what it keeps; `frame` may be reused after the
   * call. `offload` marks a frame the NAT built: its checksums are known good (the device may
   * tell the guest so) and it may be a TCP segment larger than the MTU (`gsoSize` > 0: the
   * guest's TSO receive path splits it).
   */
  receive(frame: Uint8Array, offload?: RxOffload): void;
  /** Frames the device holds that the guest has not taken yet (backends may slow down). */
  backlog(): number;
}

/** What the NAT says about a frame it built (see NetReceiver.receive). */
export interface RxOffload {
  /** Checksums are valid. */
  checksumValid: boolean;
  /** For a TCP segment larger than one MTU: the segment size to cut it into; else 0. */
  gsoSize: number;
}

/** What a backend may be given by the device (how large frames from the guest may be). */
export interface TxCapabilities {
  /**
   * True when the backend takes TCP segments larger than the MTU with unfinished TCP/UDP
   * checksums (the NAT: it reads the payload and never the checksum). Otherwise the device
   * finishes checksums and cuts TSO segments into wire frames first.
   */
  acceptsOffload: boolean;
  /**
   * True when the backend can produce frames larger than the MTU for the guest (the NAT's
   * host→guest TCP), if the guest accepts them.
   */
  producesLargeFrames: boolean;
}

/** A network backend, as a NIC sees it. */
export interface NetBackend extends TxCapabilities {
  /** Name for messages, e.g. `user`, `stream unix:/tmp/s`. */
  readonly name: string;
  /** Connects the device: frames for the guest go to `rx`. Called once. */
  attach(rx: NetReceiver, o: { guestLargeFrames: () => boolean }): void;
  /** A frame the guest transmitted (the backend may keep `frame`). */
  send(frame: Uint8Array): void;
  /**
   * Work deferred to the end of the guest's time slice (the NAT's pure ACKs); the device
   * calls it at every slice boundary. Optional.
   */
  flush?(): void;
  /** Counters for `--stats` (name → count), optional. */
  counters?(): Record<string, number>;
  /** Backend state as plain data (the NAT's), optional. */
  save?(): unknown;
  /** Restores from untrusted state (throws VirtusError('BAD_STATE')). */
  restore?(state: unknown): void;
  /** Releases host resources (sockets, listeners). */
  close(): void;
}
