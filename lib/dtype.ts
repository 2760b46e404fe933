// Element types. The numeric codes match native/include/kiln/dtype.h.
import { DTypeError } from './errors';

export type DType =
  | 'float32'
  | 'float16'
  | 'bfloat16'
  | 'float8_e4m3'
  | 'float8_e5m2'
  | 'int8'
  | 'uint8'
  | 'int32'
  | 'bool';

export const DTYPES: readonly DType[] = [
  'float32',
  'float16',
  'bfloat16',
  'float8_e4m3',
  'float8_e5m2',
  'int8',
  'uint8',
  'int32',
  'bool',
];

/** The TypedArray that readback (`data()`, `dataSync()`) returns for each dtype. */
export interface DataTypeMap {
  float32: Float32Array;
  float16: Uint16Array; // raw IEEE binary16 bits
  bfloat16: Uint16Array; // raw bfloat16 bits
  float8_e4m3: Uint8Array; // raw codes
  float8_e5m2: Uint8Array; // raw codes
  int8: Int8Array;
  uint8: Uint8Array;
  int32: Int32Array;
  bool: Uint8Array; // 0 or 1
}
export type TypedArrayFor<D extends DType> = DataTypeMap[D];
export type AnyTypedArray = DataTypeMap[DType];

const CODES: Record<DType, number> = {
  float32: 0,
  float16: 1,
  bfloat16: 2,
  float8_e4m3: 3,
  float8_e5m2: 4,
  int8: 5,
  uint8: 6,
  int32: 7,
  bool: 8,
};

const SIZES: Record<DType, number> = {
  float32: 4,
  float16: 2,
  bfloat16: 2,
  float8_e4m3: 1,
  float8_e5m2: 1,
  int8: 1,
  uint8: 1,
  int32: 4,
  bool: 1,
};

type TypedArrayCtor = { new (buffer: ArrayBufferLike, byteOffset?: number, length?: number): AnyTypedArray };
const ARRAY_TYPES: Record<DType, TypedArrayCtor> = {
  float32: Float32Array,
  float16: Uint16Array,
  bfloat16: Uint16Array,
  float8_e4m3: Uint8Array,
  float8_e5m2: Uint8Array,
  int8: Int8Array,
  uint8: Uint8Array,
  int32: Int32Array,
  bool: Uint8Array,
};

export function dtypeCode(d: DType): number {
  return CODES[d];
}

export function dtypeSize(d: DType): number {
  return SIZES[d];
}

export function isFloatDType(d: DType): boolean {
  return d === 'float32' || d === 'float16' || d === 'bfloat16' || d === 'float8_e4m3' || d === 'float8_e5m2';
}

/** Wraps bytes (already in the dtype's storage format) in the dtype's TypedArray. */
export function typedArrayOf<D extends DType>(d: D, buffer: ArrayBufferLike): TypedArrayFor<D> {
  return new ARRAY_TYPES[d](buffer) as TypedArrayFor<D>;
}

/** The TypedArray constructor whose elements are this dtype's raw storage. */
export function storageArrayType(d: DType): TypedArrayCtor {
  return ARRAY_TYPES[d];
}

/** Validates a dtype given by a user (a typo gives a clear DTypeError). */
export function checkDType(op: string, d: unknown): DType {
  if (typeof d === 'string' && Object.prototype.hasOwnProperty.call(CODES, d)) return d as DType;
  throw new DTypeError(`kiln: ${op}: unknown dtype ${JSON.stringify(d)}; expected one of ${DTYPES.join(', ')}`);
}
