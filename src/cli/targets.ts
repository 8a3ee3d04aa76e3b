// The one target builder of every command: which stacks (names, --stack, --config, --all), which
// of their hosts (--host), and what a stack that cannot be read does (stops the command, or is
// reported as one result among the hosts).
import { readdirSync } from "node:fs";
import { selectHosts, type Environment, type HostOfEnvironment } from "../config/environment";
import { ConfigError } from "../config/schema";
import { loadEnvironment, STACKS_DIR } from "../config/stack-file";

/** A stack by name (stacks/Pulumi.<name>.yaml) or by path. */
export interface StackTarget {
    stack?: string;
    file?: string;
}

/** What the commands' options say of stacks: one `--stack`/`--config` (render, apply, knock), or many. */
export interface TargetOptions {
    stack?: string | string[];
    config?: string | string[];
    all?: boolean;
    host: string[];
}

const list = (value: string | string[] | undefined) => (value === undefined ? [] : Array.isArray(value) ? value : [value]);

/** Every stack file in stacks/ but the documented example. */
export function allStacks(): string[] {
    return readdirSync(STACKS_DIR)
        .map((file) => /^Pulumi\.(.+)\.yaml$/.exec(file)?.[1])
        .filter((name): name is string => name !== undefined && name !== "example")
        .sort();
}

/**
 * The stacks named by positional names, --stack, --all and --config. `exactlyOne`: the commands
 * about one environment (one --stack or one --config); else at least one, `missing` saying how.
 */
export function stackTargets(options: TargetOptions, how: { names?: string[]; exactlyOne?: boolean; missing?: string } = {}): StackTarget[] {
    if (how.exactlyOne && !options.stack === !options.config) throw new ConfigError("arguments", ["give exactly one of --stack NAME or --config FILE"]);
    const targets = [
        ...[...(how.names ?? []), ...list(options.stack), ...(options.all ? allStacks() : [])].map((stack) => ({ stack })),
        ...list(options.config).map((file) => ({ file })),
    ];
    if (targets.length === 0) throw new ConfigError("arguments", [how.missing ?? "name at least one stack (--stack NAME, --config FILE or --all)"]);
    return targets;
}

/** Every stack must load: a command that changes, lists or renders goes nowhere on a bad stack. */
export function targetHosts(targets: StackTarget[], hostNames: string[]): HostOfEnvironment[] {
    return selectHosts(
        targets.map((target) => loadEnvironment(target)),
        hostNames,
    );
}

/** A read-only check over a fleet (drift, audit): a stack that cannot be read is one result, the others are checked. */
export function readableHosts(
    targets: StackTarget[],
    hostNames: string[],
): { hosts: HostOfEnvironment[]; unreadable: { target: StackTarget; error: unknown }[] } {
    const environments: Environment[] = [];
    const unreadable: { target: StackTarget; error: unknown }[] = [];
    for (const target of targets) {
        try {
            environments.push(loadEnvironment(target));
        } catch (error) {
            unreadable.push({ target, error });
        }
    }
    return { hosts: selectHosts(environments, hostNames), unreadable };
}
