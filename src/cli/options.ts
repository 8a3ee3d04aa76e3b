// Option values the commands share, checked as commander reads them. Loaded at every start: only
// node's own modules here and ConfigError's own module (without zod).
import { isIP } from "node:net";
import { ConfigError } from "../config/config-error";

/** Exit codes shared by every command: 2 is "could not even start" (bad config, bad arguments). */
export const EXIT_BAD_INPUT = 2;

/** A bad argument, named like a bad key of a stack. */
export function argumentError(problem: string): ConfigError {
    return new ConfigError("arguments", [problem]);
}

export const repeatable = (value: string, previous: string[]) => [...previous, value];

export function concurrencyOf(value: number): number {
    if (!Number.isInteger(value) || value < 1) throw argumentError("--concurrency: a whole number of hosts, at least 1");
    return value;
}

/** `--resolve support.kolmisoft.com=192.0.2.1,2001:db8::1`, like curl's --resolve. */
export function collectResolve(value: string, previous: Record<string, string[]>): Record<string, string[]> {
    const [name, addresses] = value.split("=", 2);
    const list = (addresses ?? "").split(",").filter(Boolean);
    if (!name || list.length === 0 || list.some((address) => isIP(address) === 0))
        throw argumentError(`--resolve ${value}: expected NAME=ADDRESS[,ADDRESS...]`);
    return { ...previous, [name]: list };
}
