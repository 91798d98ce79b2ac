/** `module-dir.ts` for the CommonJS build (dist/cjs/internal), which compiles this file in its
 * place: the same export, from `__dirname` instead of `import.meta`. */
export const MODULE_DIR: string = __dirname;
