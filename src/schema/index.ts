export * from "./data.ts";
export * from "./models.ts";
export * from "./ops.ts";
export * from "./scoring.ts";
export * from "./tensor.ts";
export * from "./version.ts";
export * from "./wire.ts";
export * from "./train.ts";
