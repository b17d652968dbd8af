import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isVirtusError } from '../../util/errors.ts';
import {
  IIR_MSR, IIR_NONE, IIR_RDA, IIR_RLS, IIR_THRE, IIR_TIMEOUT, LSR_DR, LSR_OE, LSR_TEMT, LSR_THRE, Uart, type UartState,
} from './uart.ts';

const RBR = 0, THR = 0, DLL = 0, IER = 1, DLM = 1, IIR = 2, FCR = 2, LCR = 3, MCR = 4, LSR = 5, MSR = 6, SCR = 7;

function setup() {
  const line = { level: false, set(l: boolean) { this.level = l; } };
  const out: number[] = [];
  let ready = 0;
  const uart = new Uart(line, { output: (b) => out.push(...b), rxReady: () => ready++ });
  const r = (off: number) => uart.read(off, 1);
  const w = (off: number, v: number) => uart.write(off, 1, v);
  const rx = (s: string) => uart.receive(new TextEncoder().encode(s));
  return { uart, line, out, r, w, rx, ready: () => ready };
}

describe('UART registers', () => {
  it('powers on idle: no interrupt, transmitter empty, modem lines up', () => {
    const { r, line } = setup();
    assert.equal(r(IIR), IIR_NONE);
    assert.equal(r(LSR), LSR_THRE | LSR_TEMT);
    assert.equal(r(MSR), 0xb0);
    assert.equal(r(IER), 0);
    assert.equal(line.level, false);
  });

  it('transmits THR writes to the host', () => {
    const { w, out, r } = setup();
    for (const c of 'hi\n') w(THR, c.charCodeAt(0));
    assert.equal(String.fromCharCode(...out), 'hi\n');
    assert.equal(r(LSR) & (LSR_THRE | LSR_TEMT), LSR_THRE | LSR_TEMT);
  });

  it('DLAB switches offsets 0 and 1 to the divisor latch', () => {
    const { w, r, out } = setup();
    w(LCR, 0x83);
    w(DLL, 0x0c);
    w(DLM, 0x01);
    assert.equal(out.length, 0, 'a divisor write is not a transmission');
    assert.equal(r(DLL), 0x0c);
    assert.equal(r(DLM), 0x01);
    w(LCR, 0x03);
    assert.equal(r(IER), 0, 'IER is untouched by divisor writes');
    assert.equal(r(LCR), 0x03);
    w(LCR, 0x80);
    assert.equal(r(DLL), 0x0c);
  });

  it('keeps IER to its four defined bits, MCR to five; SCR holds any byte', () => {
    const { w, r } = setup();
    w(IER, 0xff);
    assert.equal(r(IER), 0x0f);
    w(MCR, 0xff);
    assert.equal(r(MCR), 0x1f);
    w(SCR, 0xa5);
    assert.equal(r(SCR), 0xa5);
  });

  it('reports FIFO mode in IIR bits 7:6', () => {
    const { w, r } = setup();
    w(FCR, 0x01);
    assert.equal(r(IIR), 0xc0 | IIR_NONE);
    w(FCR, 0x00);
    assert.equal(r(IIR), IIR_NONE);
  });

  it('reads unmapped offsets of the window as 0 and ignores writes there', () => {
    const { uart } = setup();
    uart.write(0x20, 1, 0x55);
    assert.equal(uart.read(0x20, 1), 0);
  });
});

describe('UART receive path', () => {
  it('without FIFOs holds one byte and reports data available', () => {
    const { w, r, rx, line } = setup();
    w(IER, 0x01);
    assert.equal(rx('ab'), 1, 'only one byte fits the holding register');
    assert.equal(r(LSR) & LSR_DR, LSR_DR);
    assert.equal(line.level, true);
    assert.equal(r(IIR), IIR_RDA);
    assert.equal(r(RBR), 'a'.charCodeAt(0));
    assert.equal(r(LSR) & LSR_DR, 0);
    assert.equal(line.level, false);
    assert.equal(r(IIR), IIR_NONE);
  });

  it('with FIFOs takes 16 bytes and applies the trigger level, reporting a timeout below it', () => {
    const { w, r, rx, uart, ready } = setup();
    w(FCR, 0x81); // enable, trigger at 8
    w(IER, 0x01);
    assert.equal(rx('0123456789abcdefXYZ'), 16);
    assert.equal(uart.rxSpace(), 0);
    assert.equal(r(IIR), 0xc0 | IIR_RDA);
    let got = '';
    for (let i = 0; i < 9; i++) got += String.fromCharCode(r(RBR));
    assert.equal(got, '012345678');
    assert.equal(ready(), 9, 'the host hears each freed byte');
    assert.equal(r(IIR), 0xc0 | IIR_TIMEOUT, '7 left, below the trigger of 8');
  });

  it('clears the receive FIFO on FCR bit 1 and when FIFOs are switched', () => {
    const { w, r, rx } = setup();
    w(FCR, 0x01);
    rx('abc');
    w(FCR, 0x03);
    assert.equal(r(LSR) & LSR_DR, 0);
    rx('abc');
    w(FCR, 0x00);
    assert.equal(r(LSR) & LSR_DR, 0);
  });

  it('reads RBR as 0 when empty', () => {
    const { r } = setup();
    assert.equal(r(RBR), 0);
  });
});

describe('UART transmit interrupt', () => {
  it('enabling THRI with THR empty raises THRE; reading IIR clears it; writing THR re-arms it', () => {
    const { w, r, line } = setup();
    w(IER, 0x02);
    assert.equal(line.level, true);
    assert.equal(r(IIR), IIR_THRE);
    assert.equal(line.level, false);
    assert.equal(r(IIR), IIR_NONE, 'cleared by the read');
    w(THR, 0x41);
    assert.equal(line.level, true);
    assert.equal(r(IIR), IIR_THRE);
  });

  it("passes Linux 8250's THRE re-assertion probe", () => {
    const { w, r } = setup();
    w(IER, 0x02);
    const iir1 = r(IIR);
    w(IER, 0);
    w(IER, 0x02);
    const iir2 = r(IIR);
    w(IER, 0);
    assert.equal(iir1 & 1, 0);
    assert.equal(iir2 & 1, 0, 'a real 16550 re-asserts THRE when THRI is enabled again');
  });

  it('masks a pending THRE while THRI is off', () => {
    const { w, line } = setup();
    w(THR, 0x41);
    assert.equal(line.level, false);
  });
});

describe('UART interrupt priority and loopback', () => {
  it('orders line status > received data > THRE > modem status', () => {
    const { w, r, line, out } = setup();
    w(MCR, 0x10); // loopback
    r(MSR); // clear the deltas of entering loopback
    w(IER, 0x0f);
    w(MCR, 0x12); // RTS -> CTS changes: modem status delta
    assert.equal(r(IIR), IIR_THRE, 'THRE (from enabling THRI) outranks modem status');
    assert.equal(r(IIR), IIR_MSR);
    w(THR, 0x31); // loops back into RBR (FIFOs off: one byte)
    w(THR, 0x32); // overrun
    assert.equal(out.length, 0, 'loopback does not reach the host');
    assert.equal(r(IIR), IIR_RLS);
    assert.equal(r(LSR) & (LSR_OE | LSR_DR), LSR_OE | LSR_DR);
    assert.equal(r(LSR) & LSR_OE, 0, 'reading LSR clears OE');
    assert.equal(r(IIR), IIR_RDA);
    assert.equal(r(RBR), 0x31);
    assert.equal(r(IIR), IIR_THRE);
    assert.equal(r(IIR), IIR_MSR);
    assert.equal(r(MSR) & 0x0f, 0x01, 'DCTS');
    assert.equal(r(IIR), IIR_NONE, 'reading MSR cleared the delta');
    assert.equal(line.level, false);
  });

  it('loopback wires RTS, DTR, OUT1, OUT2 to CTS, DSR, RI, DCD with delta bits', () => {
    const { w, r, rx } = setup();
    w(MCR, 0x10);
    assert.equal(r(MSR), 0x0b, 'CTS, DSR, DCD dropped');
    w(MCR, 0x1f);
    assert.equal(r(MSR), 0xf0 | 0x0b);
    w(MCR, 0x1b); // OUT1 off: RI trailing edge
    assert.equal(r(MSR), 0xb4);
    w(MCR, 0x00);
    assert.equal(r(MSR), 0xb0, 'back to idle lines: no change from 0xb0');
    w(MCR, 0x10);
    assert.equal(rx('x'), 0, 'the serial input is disconnected in loopback');
  });

  it('uses the character timeout below the FIFO trigger level', () => {
    const { w, r, rx } = setup();
    w(FCR, 0x41); // trigger at 4
    w(IER, 0x01);
    rx('ab');
    assert.equal(r(IIR) & 0x0f, IIR_TIMEOUT);
    rx('cd');
    assert.equal(r(IIR) & 0x0f, IIR_RDA);
  });
});

describe('UART driver sequences', () => {
  it("serves OpenSBI's uart8250 init, putc and getc", () => {
    const { w, r, rx, out } = setup();
    // init: no interrupts, 115200 baud from 3.6864 MHz, 8N1, FIFOs on, modem lines off
    w(IER, 0);
    w(LCR, 0x80);
    w(DLL, 2);
    w(DLM, 0);
    w(LCR, 0x03);
    w(FCR, 0x01);
    w(MCR, 0);
    r(LSR);
    r(RBR);
    w(SCR, 0);
    for (const c of 'OK') {
      while (!(r(LSR) & LSR_THRE));
      w(THR, c.charCodeAt(0));
    }
    assert.equal(String.fromCharCode(...out), 'OK');
    assert.equal(r(LSR) & LSR_DR, 0);
    rx('y');
    assert.equal(r(LSR) & LSR_DR, LSR_DR);
    assert.equal(r(RBR), 'y'.charCodeAt(0));
  });
});

describe('UART save/restore', () => {
  function busy() {
    const s = setup();
    s.w(LCR, 0x80);
    s.w(DLL, 3);
    s.w(LCR, 0x03);
    s.w(FCR, 0x81);
    s.w(IER, 0x03);
    s.w(SCR, 0x5a);
    s.rx('hello');
    s.r(RBR);
    return s;
  }

  it('round-trips through JSON, including the FIFO and the pending THRE', () => {
    const a = busy();
    const saved = JSON.parse(JSON.stringify(a.uart.save())) as UartState;
    assert.deepEqual(saved.rx, [...new TextEncoder().encode('ello')]);
    const b = setup();
    b.uart.restore(saved);
    assert.deepEqual(b.uart.save(), a.uart.save());
    assert.equal(b.line.level, true);
    assert.equal(b.r(IIR), 0xc0 | IIR_TIMEOUT);
    let s = '';
    while (b.r(LSR) & LSR_DR) s += String.fromCharCode(b.r(RBR));
    assert.equal(s, 'ello');
  });

  const corruptions: Array<[string, (s: UartState) => unknown, RegExp]> = [
    ['a missing field', ({ scr: _s, ...rest }) => rest, /no field "scr"/],
    ['an unknown field', (s) => ({ ...s, extra: 0 }), /unknown field "extra"/],
    ['dll out of range', (s) => ({ ...s, dll: 256 }), /dll must be an integer from 0 to 255/],
    ['ier reserved bits', (s) => ({ ...s, ier: 0x10 }), /ier must be an integer from 0 to 15/],
    ['mcr reserved bits', (s) => ({ ...s, mcr: 0x20 }), /mcr must be/],
    ['fcr action bits', (s) => ({ ...s, fcr: 0x87 }), /fcr may only hold/],
    ['fcr trigger without FIFO', (s) => ({ ...s, fcr: 0x80, rx: [] }), /trigger level but FIFOs disabled/],
    ['lsrErrors with DR', (s) => ({ ...s, lsrErrors: 0x01 }), /lsrErrors may only hold/],
    ['rx too long', (s) => ({ ...s, rx: new Array(17).fill(0) }), /rx must be an array of at most 16/],
    ['rx over one byte without FIFO', (s) => ({ ...s, fcr: 0, rx: [1, 2] }), /rx holds 2 bytes/],
    ['rx not bytes', (s) => ({ ...s, rx: [300] }), /rx\[0\] must be an integer from 0 to 255/],
    ['thrIpending not boolean', (s) => ({ ...s, thrIpending: 1 }), /thrIpending must be true or false/],
    ['msr disagreeing with mcr', (s) => ({ ...s, msr: 0x00 }), /msr status bits 0x0 disagree/],
    ['null', () => null, /state must be an object, got null/],
  ];
  for (const [what, corrupt, message] of corruptions) {
    it(`rejects a state with ${what}`, () => {
      const b = setup();
      const before = b.uart.save();
      assert.throws(
        () => b.uart.restore(corrupt(busy().uart.save())),
        (e) => isVirtusError(e, 'BAD_STATE') && e.message.startsWith('uart0: ') && message.test(e.message),
      );
      assert.deepEqual(b.uart.save(), before);
    });
  }
});
