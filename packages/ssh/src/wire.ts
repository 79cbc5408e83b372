/**
 * The SSH wire encoding (RFC 4251 §5) the key and certificate formats are built of. The reader never
 * reads past its buffer: a length that points outside it is a malformed input, not a crash.
 */
export class WireError extends Error {}

export class WireReader {
  private offset = 0;
  constructor(private readonly buffer: Buffer) {}

  get position(): number {
    return this.offset;
  }

  get done(): boolean {
    return this.offset === this.buffer.length;
  }

  private take(length: number): Buffer {
    if (length < 0 || this.offset + length > this.buffer.length) throw new WireError('truncated');
    const slice = this.buffer.subarray(this.offset, this.offset + length);
    this.offset += length;
    return slice;
  }

  uint32(): number {
    return this.take(4).readUInt32BE(0);
  }

  uint64(): bigint {
    return this.take(8).readBigUInt64BE(0);
  }

  bytes(): Buffer {
    return this.take(this.uint32());
  }

  text(): string {
    const bytes = this.bytes();
    const text = bytes.toString('utf8');
    if (!Buffer.from(text, 'utf8').equals(bytes)) throw new WireError('not UTF-8');
    return text;
  }

  /** a string holding a sequence of strings (a certificate's principals) */
  textList(): string[] {
    const inner = new WireReader(this.bytes());
    const items: string[] = [];
    while (!inner.done) items.push(inner.text());
    return items;
  }

  /** a string holding name/data pairs (a certificate's critical options and extensions), names only */
  names(): string[] {
    const inner = new WireReader(this.bytes());
    const names: string[] = [];
    while (!inner.done) {
      names.push(inner.text());
      inner.bytes();
    }
    return names;
  }

  end(): void {
    if (!this.done) throw new WireError('trailing bytes');
  }
}

export class WireWriter {
  private readonly parts: Buffer[] = [];

  uint32(value: number): this {
    const buffer = Buffer.alloc(4);
    buffer.writeUInt32BE(value);
    this.parts.push(buffer);
    return this;
  }

  uint64(value: bigint): this {
    const buffer = Buffer.alloc(8);
    buffer.writeBigUInt64BE(value);
    this.parts.push(buffer);
    return this;
  }

  bytes(value: Buffer | string): this {
    const buffer = typeof value === 'string' ? Buffer.from(value, 'utf8') : value;
    this.uint32(buffer.length);
    this.parts.push(buffer);
    return this;
  }

  /** an mpint (RFC 4251 §5): big-endian, a leading zero byte when the high bit is set, no others */
  mpint(value: Buffer): this {
    let start = 0;
    while (start < value.length && value[start] === 0) start += 1;
    const magnitude = value.subarray(start);
    return this.bytes(magnitude.length > 0 && (magnitude[0]! & 0x80) !== 0 ? Buffer.concat([Buffer.from([0]), magnitude]) : magnitude);
  }

  raw(value: Buffer): this {
    this.parts.push(value);
    return this;
  }

  toBuffer(): Buffer {
    return Buffer.concat(this.parts);
  }
}

/** fixed-width big-endian from an mpint's magnitude (ECDSA r and s for IEEE P1363) */
export function fixedWidth(mpint: Buffer, width: number): Buffer {
  let start = 0;
  while (start < mpint.length - 1 && mpint[start] === 0) start += 1;
  const magnitude = mpint.subarray(start);
  if (magnitude.length > width) throw new WireError('integer too large');
  return Buffer.concat([Buffer.alloc(width - magnitude.length), magnitude]);
}
