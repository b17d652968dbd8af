/**
 * An NS16550A UART (8 byte-wide registers, reg-shift 0), as on QEMU's virt board at
 * 0x1000_0000. Registers follow the 16550 datasheet conventions:
 *
 *   0  RBR (read) / THR (write)         DLL when LCR.DLAB = 1
 *   1  IER                              DLM when LCR.DLAB = 1
 *   2  IIR (read) / FCR (write)
 *   3  LCR   4 MCR   5 LSR   6 MSR   7 SCR
 *
 * Transmission is instantaneous while the host has room: a byte written to THR goes to the
 * host at once, so THR and the transmitter are empty again (LSR.THRE and LSR.TEMT read 1), and
 * each write re-arms the THRE interrupt as the emptied holding register would. When the host
 * has no room (a terminal or pipe read more slowly than the guest writes), the byte stays in
 * THR until it has, as on a slow line: the guest waits, the host buffers nothing more. Received bytes wait in a 16-byte FIFO
 * (one byte with FIFOs off) that the host fills with receive(), which takes only what fits so
 * the host keeps the rest (back-pressure). The line is not gated by MCR.OUT2 (as on QEMU).
 */
import type { Device, IrqLine } from '../device.ts';
import { StateReader, type Stateful } from '../state.ts';

/** The window QEMU's virt board gives the UART (registers repeat nowhere; the rest reads 0). */
export const UART_SIZE = 0x100;
/** The input clock QEMU declares (`clock-frequency`): 1.8432 MHz × 2, the classic PC crystal. */
export const UART_CLOCK_HZ = 3_686_400;
export const FIFO_SIZE = 16;

// IER bits
const IER_RDI = 0x01; // received data available
const IER_THRI = 0x02; // THR empty
const IER_RLSI = 0x04; // receiver line status
const IER_MSI = 0x08; // modem status
// IIR values (bits 3..1 identify the source; bit 0 = 1: none pending)
export const IIR_NONE = 0x01;
export const IIR_RLS = 0x06;
export const IIR_RDA = 0x04;
export const IIR_TIMEOUT = 0x0c;
export const IIR_THRE = 0x02;
export const IIR_MSR = 0x00;
const IIR_FIFO = 0xc0;
// FCR bits
const FCR_ENABLE = 0x01;
const FCR_CLEAR_RX = 0x02;
// LCR, MCR
const LCR_DLAB = 0x80;
const MCR_DTR = 0x01;
const MCR_RTS = 0x02;
const MCR_OUT1 = 0x04;
const MCR_OUT2 = 0x08;
const MCR_LOOP = 0x10;
// LSR bits
export const LSR_DR = 0x01;
export const LSR_OE = 0x02;
export const LSR_THRE = 0x20;
export const LSR_TEMT = 0x40;
const LSR_ERRORS = 0x1e; // OE, PE, FE, BI: cleared by reading LSR
// MSR bits
const MSR_CTS = 0x10;
const MSR_DSR = 0x20;
const MSR_RI = 0x40;
const MSR_DCD = 0x80;
/** Modem inputs with no modem attached: clear to send, data set ready, carrier detect. */
const MSR_IDLE = MSR_CTS | MSR_DSR | MSR_DCD;
/** FCR bits 7:6 select the receive FIFO trigger level. */
const RX_TRIGGER = [1, 4, 8, 14];

/**
 * The modem status inputs (MSR bits 7:4) for an MCR value: with no modem attached they read
 * idle; loopback wires RTS->CTS, DTR->DSR, OUT1->RI, OUT2->DCD.
 */
function modemInputs(mcr: number): number {
  if (!(mcr & MCR_LOOP)) return MSR_IDLE;
  return (mcr & MCR_RTS ? MSR_CTS : 0) | (mcr & MCR_DTR ? MSR_DSR : 0) | (mcr & MCR_OUT1 ? MSR_RI : 0) | (mcr & MCR_OUT2 ? MSR_DCD : 0);
}

/** Where the UART's output goes, and how the host learns it may push more input. */
export interface UartHost {
  /** Bytes the guest transmitted. */
  output(bytes: Uint8Array): void;
  /**
   * Bytes the host can take now (optional; default: any number). At 0 a byte written to THR
   * stays there (LSR.THRE reads 0) until poll() finds room: the guest waits, as for a slow
   * line, instead of the host buffering without bound.
   */
  room?(): number;
  /** Called when the guest read a byte and the receive FIFO has room again (optional). */
  rxReady?(): void;
}

/** Saved UART state. */
export interface UartState {
  dll: number;
  dlm: number;
  ier: number;
  lcr: number;
  mcr: number;
  scr: number;
  /** FCR bit 0 and bits 7:6 (the rest of FCR is write-only action bits). */
  fcr: number;
  /** LSR error bits (OE, PE, FE, BI) not yet read. */
  lsrErrors: number;
  /** MSR as the guest would read it (status and delta bits). */
  msr: number;
  /** Received bytes not yet read, oldest first. */
  rx: number[];
  /** The THRE interrupt is pending (set when THR empties, cleared by reading IIR or writing THR). */
  thrIpending: boolean;
  /** The byte held in THR while the host had no room (empty or one byte). */
  thr: number[];
}

export class Uart implements Device, Stateful<UartState> {
  readonly size = UART_SIZE;
  private dll = 0;
  private dlm = 0;
  private ier = 0;
  private lcr = 0;
  private mcr = 0;
  private scr = 0;
  private fcr = 0;
  private lsrErrors = 0;
  private msr = MSR_IDLE;
  private readonly rx = new Uint8Array(FIFO_SIZE);
  private rxHead = 0;
  private rxCount = 0;
  private thrIpending = false;
  /** The byte THR holds while the host has no room for it, or -1. */
  private thr = -1;

  constructor(
    private readonly irq: IrqLine,
    private readonly host: UartHost,
    readonly name = 'uart0',
  ) {}

  reset(): void {
    this.dll = this.dlm = this.ier = this.lcr = this.mcr = this.scr = this.fcr = this.lsrErrors = 0;
    this.msr = MSR_IDLE;
    this.rxHead = this.rxCount = 0;
    this.thrIpending = false;
    this.thr = -1;
    this.update();
  }

  /** At a slice boundary: a byte held in THR goes out once the host has room. */
  poll(): void {
    if (this.thr < 0 || (this.host.room?.() ?? 1) <= 0) return;
    const byte = this.thr;
    this.thr = -1;
    this.transmit(byte);
    this.update();
  }

  /** Bytes the receive FIFO can take now (0 in loopback mode, where the serial input is disconnected). */
  rxSpace(): number {
    return this.mcr & MCR_LOOP ? 0 : this.rxCapacity() - this.rxCount;
  }

  /** Host input: queues as many of `bytes` as fit and returns how many were taken. */
  receive(bytes: Uint8Array): number {
    const n = Math.min(bytes.length, this.rxSpace());
    for (let i = 0; i < n; i++) this.rxPush(bytes[i]!);
    if (n > 0) this.update();
    return n;
  }

  read(offset: number, _width: 1 | 2 | 4): number {
    // Registers are bytes; a wider access reads the register at its first byte.
    let v: number;
    switch (offset) {
      case 0:
        if (this.lcr & LCR_DLAB) return this.dll;
        v = this.rxPop();
        break;
      case 1:
        return this.lcr & LCR_DLAB ? this.dlm : this.ier;
      case 2:
        v = this.iir();
        // Reading IIR while it reports THRE clears that interrupt (16550 datasheet, table of interrupt control).
        if ((v & 0x0f) === IIR_THRE) this.thrIpending = false;
        v |= this.fcr & FCR_ENABLE ? IIR_FIFO : 0;
        break;
      case 3:
        return this.lcr;
      case 4:
        return this.mcr;
      case 5:
        v = this.lsr();
        this.lsrErrors = 0;
        break;
      case 6:
        v = this.msr;
        this.msr &= 0xf0; // reading MSR clears the delta bits
        break;
      case 7:
        return this.scr;
      default:
        return 0;
    }
    this.update();
    return v;
  }

  write(offset: number, _width: 1 | 2 | 4, value: number): void {
    const v = value & 0xff;
    switch (offset) {
      case 0:
        if (this.lcr & LCR_DLAB) this.dll = v;
        else this.transmit(v);
        break;
      case 1:
        if (this.lcr & LCR_DLAB) {
          this.dlm = v;
        } else {
          // Enabling THRI while THR is empty raises THRE at once (Linux's 8250 startup checks this).
          if (v & IER_THRI && !(this.ier & IER_THRI)) this.thrIpending = true;
          this.ier = v & 0x0f;
        }
        break;
      case 2:
        this.writeFcr(v);
        break;
      case 3:
        this.lcr = v;
        break;
      case 4:
        this.writeMcr(v & 0x1f);
        break;
      case 7:
        this.scr = v;
        break;
      default:
        return; // LSR and MSR are read-only (writes are factory test on real parts)
    }
    this.update();
  }

  /** The highest-priority pending interrupt, in IIR encoding (without the FIFO bits). */
  private iir(): number {
    if (this.ier & IER_RLSI && this.lsrErrors) return IIR_RLS;
    if (this.ier & IER_RDI && this.rxCount > 0) {
      // FIFO mode: below the trigger level the character timeout reports instead. Input comes
      // in bursts from the host, so the four character times of silence are taken as elapsed.
      if (!(this.fcr & FCR_ENABLE) || this.rxCount >= RX_TRIGGER[this.fcr >>> 6]!) return IIR_RDA;
      return IIR_TIMEOUT;
    }
    if (this.ier & IER_THRI && this.thrIpending) return IIR_THRE;
    if (this.ier & IER_MSI && this.msr & 0x0f) return IIR_MSR;
    return IIR_NONE;
  }

  private lsr(): number {
    return (this.rxCount > 0 ? LSR_DR : 0) | this.lsrErrors | (this.thr < 0 ? LSR_THRE | LSR_TEMT : 0);
  }

  private update(): void {
    this.irq.set(this.iir() !== IIR_NONE);
  }

  private transmit(byte: number): void {
    if (!(this.mcr & MCR_LOOP) && (this.host.room?.() ?? 1) <= 0) {
      // The host is full: the byte waits in THR (a second write while it waits replaces it,
      // as an overrun of the holding register would lose it).
      this.thr = byte;
      return;
    }
    if (this.mcr & MCR_LOOP) {
      // Loopback: the transmitter output feeds the receiver.
      if (this.rxCount < this.rxCapacity()) this.rxPush(byte);
      else this.lsrErrors |= LSR_OE;
    } else {
      this.host.output(new Uint8Array([byte]));
    }
    // The byte left THR at once: THR is empty again, which is a new THRE event.
    this.thrIpending = true;
  }

  private writeFcr(v: number): void {
    // 16550: FCR bit 0 must be set for the other bits to take effect; changing it clears both FIFOs.
    if ((v ^ this.fcr) & FCR_ENABLE) this.rxClear();
    if (!(v & FCR_ENABLE)) {
      this.fcr = 0;
      return;
    }
    if (v & FCR_CLEAR_RX) this.rxClear();
    this.fcr = v & 0xc1;
  }

  private writeMcr(v: number): void {
    const before = this.msr & 0xf0;
    const now = modemInputs(v);
    this.mcr = v;
    const changed = before ^ now;
    let delta = this.msr & 0x0f;
    if (changed & MSR_CTS) delta |= 0x01;
    if (changed & MSR_DSR) delta |= 0x02;
    if (before & MSR_RI && !(now & MSR_RI)) delta |= 0x04; // TERI: trailing edge of RI only
    if (changed & MSR_DCD) delta |= 0x08;
    this.msr = now | delta;
  }

  private rxCapacity(): number {
    return this.fcr & FCR_ENABLE ? FIFO_SIZE : 1;
  }

  private rxPush(b: number): void {
    this.rx[(this.rxHead + this.rxCount) % FIFO_SIZE] = b;
    this.rxCount++;
  }

  private rxPop(): number {
    if (this.rxCount === 0) return 0;
    const b = this.rx[this.rxHead]!;
    this.rxHead = (this.rxHead + 1) % FIFO_SIZE;
    this.rxCount--;
    this.host.rxReady?.();
    return b;
  }

  private rxClear(): void {
    this.rxHead = this.rxCount = 0;
  }

  save(): UartState {
    const rx: number[] = [];
    for (let i = 0; i < this.rxCount; i++) rx.push(this.rx[(this.rxHead + i) % FIFO_SIZE]!);
    return {
      dll: this.dll, dlm: this.dlm, ier: this.ier, lcr: this.lcr, mcr: this.mcr, scr: this.scr, fcr: this.fcr,
      lsrErrors: this.lsrErrors, msr: this.msr, rx, thrIpending: this.thrIpending, thr: this.thr < 0 ? [] : [this.thr],
    };
  }

  restore(state: unknown): void {
    const r = new StateReader(this.name, state, [
      'dll', 'dlm', 'ier', 'lcr', 'mcr', 'scr', 'fcr', 'lsrErrors', 'msr', 'rx', 'thrIpending', 'thr',
    ]);
    const s = {
      dll: r.uint('dll', 0xff), dlm: r.uint('dlm', 0xff), ier: r.uint('ier', 0x0f), lcr: r.uint('lcr', 0xff),
      mcr: r.uint('mcr', 0x1f), scr: r.uint('scr', 0xff), fcr: r.uint('fcr', 0xff), lsrErrors: r.uint('lsrErrors', 0xff),
      msr: r.uint('msr', 0xff), rx: r.uintArray('rx', FIFO_SIZE, 0xff, { upTo: true }), thrIpending: r.bool('thrIpending'),
      thr: r.uintArray('thr', 1, 0xff, { upTo: true }),
    };
    if (s.fcr & ~0xc1) r.fail(`fcr may only hold the enable and trigger bits (0xc1), got 0x${s.fcr.toString(16)}`);
    if (s.fcr & 0xc0 && !(s.fcr & FCR_ENABLE)) r.fail('fcr has a trigger level but FIFOs disabled');
    if (s.lsrErrors & ~LSR_ERRORS) r.fail(`lsrErrors may only hold OE, PE, FE, BI (0x1e), got 0x${s.lsrErrors.toString(16)}`);
    if (s.rx.length > (s.fcr & FCR_ENABLE ? FIFO_SIZE : 1)) r.fail(`rx holds ${s.rx.length} bytes, more than the receiver holds with FIFOs ${s.fcr & 1 ? 'on' : 'off'}`);
    if ((s.msr & 0xf0) !== modemInputs(s.mcr)) {
      r.fail(`msr status bits 0x${(s.msr & 0xf0).toString(16)} disagree with mcr 0x${s.mcr.toString(16)} (expected 0x${modemInputs(s.mcr).toString(16)})`);
    }
    this.dll = s.dll;
    this.dlm = s.dlm;
    this.ier = s.ier;
    this.lcr = s.lcr;
    this.mcr = s.mcr;
    this.scr = s.scr;
    this.fcr = s.fcr;
    this.lsrErrors = s.lsrErrors;
    this.msr = s.msr;
    this.thrIpending = s.thrIpending;
    this.thr = s.thr.length ? s.thr[0]! : -1;
    this.rxClear();
    for (const b of s.rx) this.rxPush(b);
    this.update();
  }
}
