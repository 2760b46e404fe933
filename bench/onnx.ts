// Hand-built ONNX models for the benchmarks' onnxruntime-node peers: a minimal
// protobuf writer and the few ONNX messages the one-node models need
// (field numbers from onnx/onnx.proto).

/** Minimal protobuf writer (varint and length-delimited fields only); bytes are kept as chunks. */
export class Pb {
  private chunks: Uint8Array[] = [];
  private small: number[] = [];
  private flush(): void {
    if (this.small.length > 0) {
      this.chunks.push(Uint8Array.from(this.small));
      this.small = [];
    }
  }
  private varint(v: number): void {
    let x = BigInt(v);
    while (x >= 0x80n) {
      this.small.push(Number((x & 0x7fn) | 0x80n));
      x >>= 7n;
    }
    this.small.push(Number(x));
  }
  int(field: number, v: number): this {
    this.varint((field << 3) | 0);
    this.varint(v);
    return this;
  }
  bytesField(field: number, data: Uint8Array): this {
    this.varint((field << 3) | 2);
    this.varint(data.length);
    this.flush();
    this.chunks.push(data);
    return this;
  }
  str(field: number, s: string): this {
    return this.bytesField(field, new TextEncoder().encode(s));
  }
  msg(field: number, m: Pb): this {
    return this.bytesField(field, m.done());
  }
  done(): Uint8Array {
    this.flush();
    if (this.chunks.length === 1) return this.chunks[0];
    const out = new Uint8Array(this.chunks.reduce((n, c) => n + c.length, 0));
    let at = 0;
    for (const c of this.chunks) {
      out.set(c, at);
      at += c.length;
    }
    this.chunks = [out];
    return out;
  }
}

/** TensorProto.DataType codes used here. */
export const ONNX_FLOAT = 1;
export const ONNX_UINT8 = 2;

/** ValueInfoProto: name + TypeProto{tensor_type{elem_type, shape}} (float by default); a string dim is symbolic. */
export function valueInfo(name: string, dims: (number | string)[], elemType = ONNX_FLOAT): Pb {
  const shape = new Pb();
  for (const d of dims) shape.msg(1, typeof d === 'string' ? new Pb().str(2, d) : new Pb().int(1, d)); // dim { dim_value | dim_param }
  const tensorType = new Pb().int(1, elemType).msg(2, shape);
  return new Pb().str(1, name).msg(2, new Pb().msg(1, tensorType));
}

/** TensorProto with raw_data (an initializer). */
export function tensorProto(name: string, dims: number[], elemType: number, raw: Uint8Array): Pb {
  const t = new Pb();
  for (const d of dims) t.int(1, d); // dims
  return t.int(2, elemType).str(8, name).bytesField(9, raw);
}

/** AttributeProto of type INT. */
export function intAttr(name: string, v: number): Pb {
  return new Pb().str(1, name).int(20, 2 /* INT */).int(3, v);
}

/** NodeProto. */
export function node(opType: string, inputs: string[], outputs: string[], opts: { domain?: string; attrs?: Pb[]; name?: string } = {}): Pb {
  const n = new Pb();
  for (const i of inputs) n.str(1, i);
  for (const o of outputs) n.str(2, o);
  n.str(3, opts.name ?? opType).str(4, opType);
  for (const a of opts.attrs ?? []) n.msg(5, a);
  if (opts.domain) n.str(7, opts.domain);
  return n;
}

/** ModelProto (ir_version 8) with one graph; opsets as [domain, version]. */
export function model(graph: Pb, opsets: [string, number][]): Uint8Array {
  const m = new Pb().int(1, 8).str(2, 'kiln-bench').msg(7, graph);
  for (const [domain, version] of opsets) m.msg(8, new Pb().str(1, domain).int(2, version));
  return m.done();
}
