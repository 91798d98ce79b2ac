// The CLI's numeric flags: plain decimal only, integers where the flag is an integer, and an
// empty value is an error naming the flag (it used to read as 0; `0x1` as 1).
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { InvalidArgumentError } from "commander";
import { INTEGER_FLAGS, num, numberParser } from "../../../src/cli/args.ts";
import { BadRequestError } from "../../../src/errors.ts";

function refused(value: string, flag: string, pattern: RegExp): void {
  assert.throws(
    () => num(value, flag, 3),
    (e: unknown) => e instanceof BadRequestError && e.path === flag && pattern.test(e.message) && e.message.includes(flag),
    `${flag} ${JSON.stringify(value)}`,
  );
}

describe("num (CLI numeric flags)", () => {
  it("reads plain decimal numbers and keeps the fallback when the flag is absent", () => {
    assert.equal(num(undefined, "--epochs", 3), 3);
    assert.equal(num("12", "--epochs", 3), 12);
    assert.equal(num("-1", "--seed", 0), -1);
    assert.equal(num("5e-4", "--lr"), 5e-4);
    assert.equal(num("0.5", "--budget"), 0.5);
    assert.equal(num(".25", "--threshold"), 0.25);
    assert.equal(num("1e30", "--lr"), 1e30);
  });

  it("refuses an empty value, naming the flag", () => {
    refused("", "--epochs", /needs a value/);
    refused("", "--lr", /needs a value/);
  });

  it("refuses what Number() reads but is not a plain decimal", () => {
    for (const v of ["0x1", "0b1", "0o7", " 3", "3 ", "Infinity", "-Infinity", "NaN", "1_000", "three", "1e", "+"]) {
      refused(v, "--epochs", /must be/);
      refused(v, "--lr", /must be/);
    }
  });

  it("refuses fractions and exponents for integer flags", () => {
    for (const flag of ["--epochs", "--batch-size", "--seed", "--top-k", "--layers", "--lora-r"]) {
      assert.ok(INTEGER_FLAGS.has(flag), flag);
      refused("1.5", flag, /whole number/);
      refused("1e3", flag, /whole number/);
    }
    refused("99999999999999999999", "--epochs", /too large/);
    assert.equal(num("1.5", "--lora-alpha"), 1.5);
  });
});

describe("numberParser (num as a commander argParser)", () => {
  it("passes numbers through and turns a refusal into commander's InvalidArgumentError, naming the flag", () => {
    assert.equal(numberParser("--epochs")("4"), 4);
    assert.equal(numberParser("--lr")("5e-4"), 5e-4);
    for (const [flag, value, pattern] of [["--epochs", "", /--epochs needs a value/], ["--epochs", "1.5", /--epochs must be a whole number/], ["--lr", "0x1", /--lr must be a decimal number/]] as const) {
      assert.throws(() => numberParser(flag)(value), (e: unknown) => e instanceof InvalidArgumentError && pattern.test(e.message), `${flag} ${value}`);
    }
  });
});
