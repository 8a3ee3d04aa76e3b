// The error every bad input becomes: where (source) and each problem with its key and fix. In a
// module of its own, without zod, so that the CLI's entry can tell it apart without loading the
// schema.
const BRAND = Symbol.for("mor-harden.ConfigError");

export class ConfigError extends Error {
    constructor(
        readonly source: string,
        readonly problems: string[],
    ) {
        super(`${source}: ${problems.length} problem${problems.length === 1 ? "" : "s"} in the stack config:\n  ${problems.join("\n  ")}`);
        this.name = "ConfigError";
        Object.defineProperty(this, BRAND, { value: true });
    }

    // `instanceof` holds across copies of this module: the CLI's entry and each command are
    // bundled apart (src/cli/bundle.ts), each with its own copy, and an error thrown by a
    // command's copy must still be recognised by the entry's.
    static [Symbol.hasInstance](value: unknown): boolean {
        return typeof value === "object" && value !== null && (value as Record<symbol, unknown>)[BRAND] === true;
    }
}
