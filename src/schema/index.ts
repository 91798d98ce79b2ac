export * from "./ops.ts";
export * from "./tensor.ts";
export * from "./version.ts";
export * from "./wire.ts";
