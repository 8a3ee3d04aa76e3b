// One switch for the tests that need root, a lab or a network namespace: with MORH_TEST_UNIT=1
// (`npm run test:unit`) they are skipped, each saying what it needs, and the rest (the unit tests)
// run; without it (`npm test`) everything runs, as before. fail2ban keeps the same kind of switch
// in one place (fail2ban/tests/utils.py: F2B.fast, and its skip decorators).
//
// A file whose tests need them takes node:test's functions from needs(...) in its first lines:
//     const { after, before, describe, it } = needs("a lab (root, network namespaces)");
// Under the switch its suites and tests are skipped and its hooks do nothing: node:test runs a
// file's top-level before()/after() even when every test in it is skipped, and they start labs.
// A file with unit tests beside them marks those suites alone: `{ skip: requires("root", ...) }`.
import * as nodeTest from "node:test";

/** Set by `npm run test:unit`: skip every test that needs root, a lab or a network namespace. */
export const UNIT_ONLY = process.env.MORH_TEST_UNIT === "1";

/** `run` (describe, it, test) with `skip` set to `reason` in its options (its .skip, .only, .todo kept). */
function skipped<T extends object>(run: T, reason: string): T {
    const call = run as unknown as (...args: unknown[]) => unknown;
    const wrapped = (name: string, ...rest: unknown[]) => {
        const body = typeof rest[rest.length - 1] === "function" ? rest.pop() : undefined;
        const options = (rest[0] ?? {}) as object;
        return call(name, { ...options, skip: reason }, ...(body ? [body] : []));
    };
    return Object.assign(wrapped, run) as unknown as T;
}

const noHook = () => undefined;

/** node:test's describe, it, test and hooks for a file whose tests need `what` (e.g. "root and unshare"). */
export function needs(what: string): Pick<typeof nodeTest, "describe" | "it" | "test" | "before" | "after" | "beforeEach" | "afterEach"> {
    if (!UNIT_ONLY) {
        const { describe, it, test, before, after, beforeEach, afterEach } = nodeTest;
        return { describe, it, test, before, after, beforeEach, afterEach };
    }
    const reason = requires(what) as string;
    return {
        describe: skipped(nodeTest.describe, reason),
        it: skipped(nodeTest.it, reason),
        test: skipped(nodeTest.test, reason),
        before: noHook,
        after: noHook,
        beforeEach: noHook,
        afterEach: noHook,
    };
}

/**
 * The `skip` option of one suite or test (in a file that also has unit tests) that needs `what`:
 * skipped under the switch, or when `available()` says it cannot run here (not called under the
 * switch); false otherwise.
 */
export function requires(what: string, available: () => boolean = () => true): string | false {
    if (UNIT_ONLY) return `needs ${what} (MORH_TEST_UNIT=1: unit tests only)`;
    return available() ? false : `needs ${what}`;
}
