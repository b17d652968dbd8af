/**
 * One TCP connection of the user NAT, as its guest-facing endpoint (RFC 9293): it terminates
 * the guest's connection and relays bytes to and from a host socket. Flow control is real
 * both ways: the window the guest sees is the room left in the host socket's buffer
 * (RCV_BUF), and host bytes go to the guest only within the window it advertises (with
 * window scaling, RFC 7323 §2), the host socket being paused while SND_BUF bytes wait.
 * The link to the guest is virtual and loses nothing unless the NIC's backlog overflows, so
 * recovery is simple: three duplicate ACKs or RTO_MS without progress resend everything
 * unacknowledged (go-back-N). No TIME_WAIT: a connection is forgotten once both FINs are
 * acknowledged (the guest's port space is its own).
 */
import type { HostTcp, TcpEvents } from './host.ts';
import { ByteQueue } from './bytes.ts';

export const FIN = 1;
export const SYN = 2;
export const RST = 4;
export const PSH = 8;
export const ACK = 16;

/** A TCP segment from the guest, parsed (options: only what the NAT uses). */
export interface TcpSeg {
  sport: number;
  dport: number;
  seq: number;
  ack: number;
  flags: number;
  window: number;
  mss: number | null;
  wscale: number | null;
  data: Uint8Array;
}

/** A segment for the guest: header fields, SYN options, and the payload's length and source. */
export interface OutSeg {
  seq: number;
  ack: number;
  flags: number;
  window: number;
  options: number[];
  len: number;
  fill?: (out: Uint8Array, at: number) => void;
}

/** What a connection needs from the NAT. */
export interface TcpOwner {
  emit(c: TcpConn, s: OutSeg): void;
  remove(c: TcpConn): void;
  /**
   * Asks for `c.flushAck()` at a flush after `delayMs` (0: the next one, at the end of the
   * guest's time slice).
   */
  ackLater(c: TcpConn, delayMs: number): void;
  /** The most payload one segment to the guest may carry (above the MSS when the guest takes TSO). */
  segmentLimit(mss: number): number;
  now(): number;
}

/** Bytes of the host socket's write buffer the guest may fill (its advertised window). */
export const RCV_BUF = 1 << 20;
/** Host bytes held for the guest before the host socket is paused. */
export const SND_BUF = 1 << 20;
/** Our window scale (RFC 7323): 1 MiB windows need 5; 7 leaves room. */
const WSCALE = 7;
const RTO_MS = 1000;
/** How long an acknowledgement of less than two full segments may wait. */
export const ACK_DELAY_MS = 10;
const SYN_TRIES = 6;
const DEFAULT_MSS = 536;
/** Our MSS to the guest: an Ethernet MTU less IP and TCP headers. */
const OUR_MSS = 1460;

/** Signed distance a - b in sequence space. */
const diff = (a: number, b: number) => (a - b) | 0;

/** Saved form of a connection: only what a restore needs to reset it on the guest's side. */
export interface TcpConnState {
  gaddr: number;
  gport: number;
  raddr: number;
  rport: number;
  seq: number;
  ack: number;
}

export class TcpConn {
  state: 'connecting' | 'syn-sent' | 'syn-rcvd' | 'established' | 'closed' = 'connecting';
  host: HostTcp | null = null;
  private readonly iss: number;
  private sndUna: number;
  /** Buffered host bytes from sndUna on; `sent` of them are in flight. */
  private readonly buf = new ByteQueue();
  private sent = 0;
  private sndWnd = 0;
  private sndWscale = 0;
  private rcvWscale = 0;
  /** The guest's MSS (from its SYN). */
  mss = DEFAULT_MSS;
  rcvNxt = 0;
  private hostEnded = false;
  private hostGone = false;
  private finSent = false;
  private finAcked = false;
  private guestFin = false;
  private paused = false;
  private dupAcks = 0;
  private lastProgress: number;
  private tries = 0;
  private lastWindow = 0;
  /** Bytes received that no segment sent since has acknowledged. */
  private ackOwed = false;
  private owedBytes = 0;

  constructor(
    private readonly owner: TcpOwner,
    readonly gaddr: number,
    readonly gport: number,
    readonly raddr: number,
    readonly rport: number,
  ) {
    this.iss = (Math.random() * 2 ** 32) >>> 0;
    this.sndUna = this.iss;
    this.lastProgress = owner.now();
  }

  /** The guest's SYN: the host connection is opened first; SYN-ACK once it is up (as slirp). */
  static fromGuest(owner: TcpOwner, syn: TcpSeg, gaddr: number, raddr: number, connect: (ev: TcpEvents) => HostTcp): TcpConn {
    const c = new TcpConn(owner, gaddr, syn.sport, raddr, syn.dport);
    c.rcvNxt = (syn.seq + 1) >>> 0;
    c.options(syn);
    c.sndWnd = syn.window; // RFC 7323 §2.2: a SYN's window is never scaled
    c.host = connect(c.events());
    return c;
  }

  /** A host connection to a forwarded port: SYN to the guest; the host socket waits (paused). */
  static fromHost(owner: TcpOwner, gaddr: number, gport: number, raddr: number, rport: number, attach: (ev: TcpEvents) => HostTcp): TcpConn {
    const c = new TcpConn(owner, gaddr, gport, raddr, rport);
    c.state = 'syn-sent';
    c.host = attach(c.events());
    c.host.pause();
    c.paused = true;
    c.sendSyn();
    return c;
  }

  private options(s: TcpSeg): void {
    this.mss = Math.max(64, Math.min(s.mss ?? DEFAULT_MSS, 65495));
    if (s.wscale !== null) {
      this.sndWscale = Math.min(s.wscale, 14);
      this.rcvWscale = WSCALE;
    }
  }

  private synOptions(): number[] {
    const o = [2, 4, OUR_MSS >> 8, OUR_MSS & 255];
    if (this.rcvWscale || this.state === 'syn-sent') o.push(1, 3, 3, WSCALE);
    return o;
  }

  private sendSyn(): void {
    const ack = this.state === 'syn-rcvd';
    this.emit({ seq: this.iss, ack: ack ? this.rcvNxt : 0, flags: ack ? SYN | ACK : SYN, window: 0xffff, options: this.synOptions(), len: 0 });
  }

  private events(): TcpEvents {
    return {
      connected: () => {
        if (this.state !== 'connecting') return;
        this.state = 'syn-rcvd';
        this.lastProgress = this.owner.now();
        this.sendSyn();
      },
      data: (b) => {
        if (this.state === 'closed') return;
        this.buf.push(b);
        if (this.buf.length >= SND_BUF && !this.paused) {
          this.paused = true;
          this.host?.pause();
        }
        this.push();
      },
      ended: () => {
        this.hostEnded = true;
        this.push();
      },
      closed: (error) => {
        this.hostGone = true;
        if (this.state === 'closed') return;
        if (error !== null || this.state === 'connecting' || this.state === 'syn-sent') this.reset();
        else {
          this.hostEnded = true;
          this.push();
        }
      },
      drained: () => {
        // A window update when the guest was held back by a small window.
        if (this.state === 'established' && this.lastWindow < RCV_BUF / 4 && this.window() >= RCV_BUF / 4) this.ack();
      },
    };
  }

  /** The receive window in bytes: room in the host socket's buffer. */
  private window(): number {
    const used = this.host && !this.hostGone ? this.host.buffered() : 0;
    return Math.max(0, RCV_BUF - used);
  }

  private windowField(): number {
    const w = this.window();
    this.lastWindow = w;
    return Math.min(0xffff, w >>> this.rcvWscale);
  }

  private get sndNxt(): number {
    return (this.sndUna + this.sent + (this.finSent && !this.finAcked ? 1 : 0)) >>> 0;
  }

  private emit(s: OutSeg): void {
    if (s.flags & ACK) {
      this.ackOwed = false;
      this.owedBytes = 0;
    }
    this.owner.emit(this, s);
  }

  private ack(): void {
    this.emit({ seq: this.sndNxt, ack: this.rcvNxt, flags: ACK, window: this.windowField(), options: [], len: 0 });
  }

  /**
   * Sends the acknowledgement deferred by `segment` unless a segment since carried it. Pure
   * ACKs wait for the end of the guest's slice: a guest that writes in small pieces then
   * finds data unacknowledged and coalesces (Nagle, RFC 9293 §3.7.4), sending large
   * segments instead of one segment and one interrupt per write.
   */
  flushAck(): void {
    if (this.ackOwed && this.state === 'established') this.ack();
  }

  /** Sends RST to the guest and drops the host socket. */
  reset(): void {
    if (this.state !== 'closed' && this.state !== 'connecting') {
      this.emit({ seq: this.sndNxt, ack: this.rcvNxt, flags: RST | ACK, window: 0, options: [], len: 0 });
    } else if (this.state === 'connecting') {
      this.emit({ seq: 0, ack: this.rcvNxt, flags: RST | ACK, window: 0, options: [], len: 0 });
    }
    this.close();
  }

  /**
   * Forgets the connection. An abort destroys the host socket; after both FINs (`graceful`)
   * the socket was ended and closes by itself once its buffered bytes are out.
   */
  close(graceful = false): void {
    if (this.state === 'closed') return;
    this.state = 'closed';
    this.buf.clear();
    if (!this.hostGone && !graceful) this.host?.destroy();
    this.hostGone = true;
    this.owner.remove(this);
  }

  /** Sends what the guest's window allows, then a FIN once the host is done and all is sent. */
  private push(): void {
    if (this.state !== 'established') return;
    const limit = this.owner.segmentLimit(this.mss);
    for (;;) {
      const unsent = this.buf.length - this.sent;
      const room = this.sndWnd - this.sent;
      if (unsent <= 0 || room <= 0) break;
      const n = Math.min(unsent, room, limit);
      const from = this.sent;
      const last = n === unsent;
      this.emit({
        seq: (this.sndUna + from) >>> 0, ack: this.rcvNxt, flags: ACK | (last ? PSH : 0), window: this.windowField(), options: [], len: n,
        fill: (out, at) => this.buf.copy(from, n, out, at),
      });
      this.sent += n;
    }
    if (this.hostEnded && !this.finSent && this.sent === this.buf.length) {
      this.finSent = true;
      this.emit({ seq: (this.sndUna + this.sent) >>> 0, ack: this.rcvNxt, flags: FIN | ACK, window: this.windowField(), options: [], len: 0 });
    }
    if (this.paused && this.buf.length < SND_BUF / 2 && this.state === 'established') {
      this.paused = false;
      if (!this.hostGone) this.host?.resume();
    }
    this.maybeDone();
  }

  private maybeDone(): void {
    if (this.guestFin && this.finSent && this.finAcked) this.close(true);
  }

  /** A segment from the guest for this connection. */
  segment(s: TcpSeg): void {
    if (s.flags & RST) {
      this.close();
      return;
    }
    if (this.state === 'connecting') return; // the guest resent its SYN while the host connects
    if (this.state === 'syn-sent') {
      if ((s.flags & (SYN | ACK)) !== (SYN | ACK) || s.ack !== ((this.iss + 1) >>> 0)) {
        if (s.flags & ACK) this.emit({ seq: s.ack, ack: 0, flags: RST, window: 0, options: [], len: 0 });
        return;
      }
      this.rcvNxt = (s.seq + 1) >>> 0;
      this.options(s);
      if (s.wscale === null) this.rcvWscale = 0;
      this.sndUna = s.ack;
      this.sndWnd = s.window;
      this.state = 'established';
      this.lastProgress = this.owner.now();
      this.ack();
      this.paused = false;
      this.host?.resume();
      this.push();
      return;
    }
    if (s.flags & SYN) {
      // A retransmitted SYN or SYN-ACK: our answer was lost or is late; repeat it.
      if (this.state === 'syn-rcvd') this.sendSyn();
      else this.ack();
      return;
    }
    if (!(s.flags & ACK)) return;
    if (this.state === 'syn-rcvd') {
      if (s.ack !== ((this.iss + 1) >>> 0)) {
        this.emit({ seq: s.ack, ack: 0, flags: RST, window: 0, options: [], len: 0 });
        return;
      }
      this.sndUna = s.ack;
      this.state = 'established';
    }
    this.acked(s);
    let needAck = false;
    const data = s.data;
    if (data.length > 0 || s.flags & FIN) {
      const off = diff(this.rcvNxt, s.seq);
      if (off < 0 || off > data.length) needAck = true; // out of order or old: say what we expect
      else {
        const fresh = data.subarray(off);
        if (fresh.length > 0) {
          if (this.guestFin || this.hostGone) {
            this.reset();
            return;
          }
          this.host!.write(fresh);
          this.rcvNxt = (this.rcvNxt + fresh.length) >>> 0;
        }
        if (s.flags & FIN && !this.guestFin) {
          this.guestFin = true;
          this.rcvNxt = (this.rcvNxt + 1) >>> 0;
          if (!this.hostGone) this.host!.end();
          needAck = true;
        } else if (fresh.length > 0) {
          // RFC 9293 §3.8.6.3 (delayed ACKs): at once for two full segments; a small one
          // waits, so a guest writing in small pieces coalesces them meanwhile (Nagle).
          this.ackOwed = true;
          this.owedBytes += fresh.length;
          this.owner.ackLater(this, this.owedBytes >= 2 * this.mss && fresh.length >= this.mss ? 0 : ACK_DELAY_MS);
        } else needAck = true;
      }
    }
    if (needAck) this.ack();
    this.push();
  }

  /** The guest's acknowledgement and window. */
  private acked(s: TcpSeg): void {
    const n = diff(s.ack, this.sndUna);
    const inFlight = this.sent + (this.finSent && !this.finAcked ? 1 : 0);
    const window = s.window << this.sndWscale;
    if (n > 0 && n <= inFlight) {
      const data = Math.min(n, this.sent);
      this.buf.drop(data);
      this.sent -= data;
      this.sndUna = (this.sndUna + data) >>> 0;
      if (n > data) {
        this.finAcked = true;
        this.sndUna = (this.sndUna + 1) >>> 0;
      }
      this.dupAcks = 0;
      this.lastProgress = this.owner.now();
    } else if (n === 0 && inFlight > 0 && s.data.length === 0 && window === this.sndWnd && !(s.flags & FIN)) {
      if (++this.dupAcks === 3) this.rewind();
    }
    this.sndWnd = window;
  }

  /** Go-back-N: everything unacknowledged is sent again. */
  private rewind(): void {
    this.sent = 0;
    if (!this.finAcked) this.finSent = false;
    this.dupAcks = 0;
    this.lastProgress = this.owner.now();
  }

  /** Timers: SYN and data retransmission, zero-window probes. */
  tick(now: number): void {
    if (now - this.lastProgress < RTO_MS) return;
    this.lastProgress = now;
    if (this.state === 'syn-sent' || this.state === 'syn-rcvd') {
      if (++this.tries > SYN_TRIES) this.reset();
      else this.sendSyn();
      return;
    }
    if (this.state !== 'established') return;
    const inFlight = this.sent + (this.finSent && !this.finAcked ? 1 : 0);
    if (inFlight > 0) {
      this.rewind();
      this.push();
    } else if (this.sndWnd === 0 && this.buf.length > 0) {
      // A zero-window probe: one byte beyond the window makes the guest tell its window.
      this.emit({ seq: this.sndUna, ack: this.rcvNxt, flags: ACK, window: this.windowField(), options: [], len: 1, fill: (o, at) => this.buf.copy(0, 1, o, at) });
      this.sent = 1;
    }
  }

  save(): TcpConnState {
    return { gaddr: this.gaddr, gport: this.gport, raddr: this.raddr, rport: this.rport, seq: this.sndNxt, ack: this.rcvNxt };
  }
}
