// Build-time types for the part of `bun:ffi` that runtimes/_bun_libc.ts uses,
// so that scripts/build_npm.ts can type-check and emit declarations with tsc
// without a dependency on bun-types. Never shipped, never loaded at run time:
// under Bun the real module answers. Extend it when the Bun backend uses more
// of bun:ffi (the build fails with "has no exported member" until then).
// Values follow Bun 1.4's FFIType enum; only their distinctness matters here.

declare module "bun:ffi" {
  export enum FFIType {
    char = 0,
    i8 = 1,
    u8 = 2,
    i16 = 3,
    u16 = 4,
    i32 = 5,
    u32 = 6,
    i64 = 7,
    u64 = 8,
    f64 = 9,
    f32 = 10,
    bool = 11,
    ptr = 12,
    void = 13,
    cstring = 14,
  }

  /** A native address as Bun hands it to JavaScript. */
  export type Pointer = number & { readonly __pointer__: unique symbol };

  type TypedArray =
    | Int8Array
    | Uint8Array
    | Int16Array
    | Uint16Array
    | Int32Array
    | Uint32Array
    | Float32Array
    | Float64Array
    | BigInt64Array
    | BigUint64Array;

  interface ArgType {
    [FFIType.char]: number;
    [FFIType.i8]: number;
    [FFIType.u8]: number;
    [FFIType.i16]: number;
    [FFIType.u16]: number;
    [FFIType.i32]: number;
    [FFIType.u32]: number;
    [FFIType.i64]: number | bigint;
    [FFIType.u64]: number | bigint;
    [FFIType.f64]: number;
    [FFIType.f32]: number;
    [FFIType.bool]: boolean;
    [FFIType.ptr]: TypedArray | DataView | Pointer | null;
    [FFIType.void]: undefined;
    [FFIType.cstring]: TypedArray | Pointer | null;
  }

  interface ReturnType {
    [FFIType.char]: number;
    [FFIType.i8]: number;
    [FFIType.u8]: number;
    [FFIType.i16]: number;
    [FFIType.u16]: number;
    [FFIType.i32]: number;
    [FFIType.u32]: number;
    [FFIType.i64]: bigint;
    [FFIType.u64]: bigint;
    [FFIType.f64]: number;
    [FFIType.f32]: number;
    [FFIType.bool]: boolean;
    [FFIType.ptr]: Pointer | null;
    [FFIType.void]: undefined;
    [FFIType.cstring]: string;
  }

  /** How one native function is called. */
  export interface FFIFunction {
    readonly args?: readonly FFIType[];
    readonly returns?: FFIType;
  }

  type Args<A> = A extends readonly FFIType[] ? { -readonly [I in keyof A]: ArgType[A[I]] } : [];

  /** The callable symbols of a library opened with {@link dlopen}. */
  export type Symbols<F extends Record<string, FFIFunction>> = {
    readonly [K in keyof F]: (
      ...args: Args<F[K]["args"]>
    ) => F[K]["returns"] extends FFIType ? ReturnType[F[K]["returns"]] : undefined;
  };

  /** A library opened with {@link dlopen}. */
  export interface Library<F extends Record<string, FFIFunction>> {
    readonly symbols: Symbols<F>;
    close(): void;
  }

  /** Opens a shared library and binds the given symbols. */
  export function dlopen<const F extends Record<string, FFIFunction>>(
    name: string | URL,
    symbols: F,
  ): Library<F>;

  /** Reads native memory at `ptr + byteOffset`. */
  export const read: {
    i8(ptr: Pointer, byteOffset?: number): number;
    u8(ptr: Pointer, byteOffset?: number): number;
    i16(ptr: Pointer, byteOffset?: number): number;
    u16(ptr: Pointer, byteOffset?: number): number;
    i32(ptr: Pointer, byteOffset?: number): number;
    u32(ptr: Pointer, byteOffset?: number): number;
    f32(ptr: Pointer, byteOffset?: number): number;
    f64(ptr: Pointer, byteOffset?: number): number;
    i64(ptr: Pointer, byteOffset?: number): bigint;
    u64(ptr: Pointer, byteOffset?: number): bigint;
    ptr(ptr: Pointer, byteOffset?: number): number;
  };
}
