/**
 * The raw format: the file is the disk, byte for byte. Its virtual size is the file's size.
 */
import { checkRange, readOnlyError, type BlockBackend, type BlockStatus, type ImageInfo } from './backend.ts';
import { readZeroFilled, type HostFile } from './host-file.ts';

const ZERO_CHUNK = 1 << 20;

/** A raw image as a BlockBackend. */
export class RawBackend implements BlockBackend {
  readonly format = 'raw';
  readonly backing = null;
  readonly size: number;
  readonly readOnly: boolean;
  private closed = false;

  constructor(private readonly file: HostFile, options: { readOnly?: boolean } = {}) {
    this.size = file.size();
    this.readOnly = options.readOnly ?? file.readOnly;
  }

  get name(): string {
    return this.file.name;
  }

  read(offset: number, buf: Uint8Array): void {
    checkRange(this.name, this.size, offset, buf.length);
    readZeroFilled(this.file, offset, buf);
  }

  write(offset: number, buf: Uint8Array): void {
    this.writable();
    checkRange(this.name, this.size, offset, buf.length);
    this.file.write(offset, buf);
  }

  flush(): void {
    if (!this.readOnly && !this.closed) this.file.flush(true);
  }

  /** A no-op: a raw file cannot give space back without hole punching, which the HostFile lacks. */
  discard(offset: number, length: number): void {
    this.writable();
    checkRange(this.name, this.size, offset, length);
  }

  writeZeroes(offset: number, length: number): void {
    this.writable();
    checkRange(this.name, this.size, offset, length);
    const zeros = new Uint8Array(Math.min(length, ZERO_CHUNK));
    for (let done = 0; done < length; done += zeros.length) {
      const n = Math.min(zeros.length, length - done);
      this.file.write(offset + done, n === zeros.length ? zeros : zeros.subarray(0, n));
    }
  }

  blockStatus(offset: number, length: number): BlockStatus {
    checkRange(this.name, this.size, offset, length);
    return { state: 'data', length };
  }

  info(): ImageInfo {
    const info: ImageInfo = { format: 'raw', virtualSize: this.size };
    const actual = this.file.allocatedSize?.();
    if (actual !== undefined) info.actualSize = actual;
    return info;
  }

  close(): void {
    if (this.closed) return;
    this.flush();
    this.closed = true;
    this.file.close();
  }

  private writable(): void {
    if (this.readOnly) throw readOnlyError(this.name);
  }
}
