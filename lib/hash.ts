// xxHash32, synchronously, from the xxhash-wasm package. Its only entry point, `await xxhash()`, is
// async (it compiles the wasm with WebAssembly.instantiate), and awaiting it at the top level of a
// module makes the module graph asynchronous, which Node's require() of ES modules refuses: CommonJS
// callers could not load peercache. The package also ships the same wasm as a file (its workerd
// build; the bytes are identical to the ones its ESM build embeds), and compiling a 3 KB module with
// `new WebAssembly.Module` is synchronous in Node. The hashing stays the package's; `h32` below is the
// few lines of its h32 glue: the string's UTF-8 bytes into the module's memory at 0, then xxh32.
import { readFileSync } from 'node:fs'

// The global WebAssembly API is typed in TypeScript's DOM library only, which this project leaves out.
declare const WebAssembly: {
  Module: new (bytes: Uint8Array) => object
  Instance: new (module: object) => { exports: object }
}

/** What the package's wasm exports for xxHash32 (its 64-bit and streaming functions go unused here). */
interface XxhashExports {
  mem: { buffer: ArrayBuffer; grow(pages: number): number }
  xxh32(offset: number, length: number, seed: number): number
}

const wasmFile = new URL('../workerd/xxhash.wasm', import.meta.resolve('xxhash-wasm'))
const wasm = new WebAssembly.Instance(new WebAssembly.Module(readFileSync(wasmFile))).exports as unknown as XxhashExports
const encoder = new TextEncoder()
let memory = new Uint8Array(wasm.mem.buffer)

/** xxHash32 of a string's UTF-8 bytes, as an unsigned 32-bit integer; the same value as xxhash-wasm's `h32`. */
export function h32(input: string, seed = 0): number {
  // UTF-8 needs at most 3 bytes per UTF-16 code unit; grow the wasm memory (64 KiB pages) to fit.
  const need = input.length * 3
  if (memory.byteLength < need) {
    wasm.mem.grow(Math.ceil((need - memory.byteLength) / 65_536))
    memory = new Uint8Array(wasm.mem.buffer)
  }
  return wasm.xxh32(0, encoder.encodeInto(input, memory).written, seed) >>> 0
}
