/**
 * A HostFile whose length is known without asking the host each time: the qcow2 backend is
 * the file's only writer while it has it open (image locking sees to that), so the length
 * read at open time plus its own writes is the length. Every L2 entry is checked against it
 * (a cluster beyond the end of the file is corruption, as `qemu-img check` counts it), which
 * would cost an fstat per guest request otherwise.
 */
import type { HostFile } from '../host-file.ts';

/** Wraps `file`, caching its size. */
export class TrackedFile implements HostFile {
  private length: number;
  readonly allocatedSize?: () => number;

  constructor(private readonly file: HostFile) {
    this.length = file.size();
    if (file.allocatedSize) this.allocatedSize = () => file.allocatedSize!();
  }

  get name(): string {
    return this.file.name;
  }

  get readOnly(): boolean {
    return this.file.readOnly;
  }

  read(position: number, buf: Uint8Array): number {
    return this.file.read(position, buf);
  }

  write(position: number, buf: Uint8Array): void {
    this.file.write(position, buf);
    this.length = Math.max(this.length, position + buf.length);
  }

  size(): number {
    return this.length;
  }

  truncate(size: number): void {
    this.file.truncate(size);
    this.length = size;
  }

  flush(dataOnly?: boolean): void {
    this.file.flush(dataOnly);
  }

  close(): void {
    this.file.close();
  }
}
