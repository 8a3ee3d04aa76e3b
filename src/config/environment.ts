// One stack = one environment. The `mor-harden:*` concern keys at the top of a stack file are the
// environment's settings; `mor-harden:hosts` names each host with its connection and its own
// overrides of any of those keys. A stack without `hosts` is one host named after the stack (the
// form every stack had before environments), validated and named exactly as before.
//
// Merge rules (a host's value over the environment's): maps merge key by key, at any depth; a
// scalar or a list replaces the inherited one; `{ add: [...] }` in place of a list appends to the
// inherited list (only where the environment sets a list there).
//
// Pure: raw values in (secure values already replaced by references), validated hosts out.
import { dirname } from "node:path";
import { ConfigError, formatIssue, hostSchema, issuesOf, secretKeys, type HostConfig, type Issue } from "./schema";

export const HOSTS_KEY = "hosts";

/** A DNS label in lower case: it names Pulumi resources and, upper-cased, environment variables. */
export const HOST_NAME = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;

/** A host's own key (not a setting): this host was the stack's one host before the stack had hosts. */
export const FORMER_STACK_HOST = "formerStackHost";

export interface EnvironmentHost {
    /** The host's name in `hosts`; in the single-host form, the stack's name. */
    name: string;
    /** Where its problems found after validation are reported (name resolution, key files). */
    source: string;
    /** What the managed files' headers name: the stack, or `stack/host`. */
    label: string;
    config: HostConfig;
    /** Set on the host that was the stack's one host: its Pulumi resources had the stack's name. */
    formerName?: string;
}

export interface Environment {
    /** The stack's name. */
    name: string;
    source: string;
    /** single: `mor-harden:connection` and no `hosts` (one host named after the stack). */
    form: "single" | "hosts";
    hosts: EnvironmentHost[];
}

type RawMap = Record<string, unknown>;
/**
 * Reads the files a host's values name (`apache.certificateFile`) on the operator's machine into
 * them, relative paths from `baseDir` (the stack file's directory): the one effect, passed in.
 */
export type FileInliner = (raw: RawMap, baseDir: string) => { raw: RawMap; issues: Issue[] };
type Path = (string | number)[];

const isMap = (value: unknown): value is RawMap => typeof value === "object" && value !== null && !Array.isArray(value);
const isAddition = (value: unknown): value is { add: unknown } => isMap(value) && Object.keys(value).length === 1 && "add" in value;

/** The inherited value with a host's overrides merged in; problems of the `add` form go to `issues`. */
export function mergeOverrides(inherited: unknown, override: unknown, issues: Issue[], path: Path = []): unknown {
    if (override === undefined) return inherited;
    if (isAddition(override)) {
        if (!Array.isArray(override.add)) {
            issues.push({ path: [...path, "add"], message: "is not a list ({ add: [...] } appends its items to the inherited list)" });
        } else if (!Array.isArray(inherited)) {
            issues.push({
                path,
                message:
                    inherited === undefined
                        ? "adds to an inherited list, but the environment sets none here: write the list itself"
                        : "adds to an inherited list, but the inherited value is not a list",
            });
        } else {
            return [...inherited, ...override.add];
        }
        return inherited;
    }
    if (isMap(override) && (isMap(inherited) || inherited === undefined)) {
        const base = inherited ?? {};
        const keys = [...new Set([...Object.keys(base), ...Object.keys(override)])];
        return Object.fromEntries(keys.map((key) => [key, mergeOverrides(base[key], override[key], issues, [...path, key])]));
    }
    return override;
}

/**
 * Where the value at `path` of a host's merged config came from: the host's overrides (with the
 * path as written there: `firewall.trusted.add[0]`), the environment's settings, or neither (a
 * default, or a required key nobody set: the host's to fix).
 */
export function originOf(overrides: RawMap, settings: RawMap, path: Path): { from: "host" | "environment"; path: Path } {
    let own: unknown = overrides;
    let inherited: unknown = settings;
    for (const [index, part] of path.entries()) {
        if (isAddition(own) && typeof part === "number") {
            const count = Array.isArray(inherited) ? inherited.length : 0;
            return part < count
                ? { from: "environment", path }
                : { from: "host", path: [...path.slice(0, index), "add", part - count, ...path.slice(index + 1)] };
        }
        if (own !== undefined && !isMap(own)) return { from: "host", path };
        if (own === undefined && (inherited === undefined || !isMap(inherited))) break;
        own = isMap(own) ? own[part] : undefined;
        inherited = isMap(inherited) ? inherited[part] : undefined;
    }
    if (own !== undefined) return { from: "host", path };
    return { from: inherited !== undefined ? "environment" : "host", path };
}

/** The file name of a stack (`Pulumi.production.yaml`) or its path, with a host: for later errors. */
const hostSource = (source: string, host: string) => `${source} (host ${host})`;

/**
 * Validates a stack's raw values as an environment. Every problem names its key: a host's own
 * as `hosts.mor-2.firewall.trusted[1]`, an inherited one by its key with the hosts it breaks.
 */
export function parseEnvironment(raw: RawMap, stack: string, source: string, options: { inlineFiles?: FileInliner; baseDir?: string } = {}): Environment {
    const { [HOSTS_KEY]: hosts, ...settings } = raw;
    const baseDir = options.baseDir ?? dirname(source);
    const validate = (values: RawMap): { config: HostConfig; issues?: undefined } | { issues: Issue[] } => {
        const inlined = options.inlineFiles?.(values, baseDir) ?? { raw: values, issues: [] };
        const result = hostSchema.safeParse(inlined.raw);
        const issues = [...inlined.issues, ...(result.success ? [] : issuesOf(result.error))];
        return issues.length > 0 || !result.success ? { issues } : { config: result.data };
    };
    if (hosts === undefined) {
        const result = validate(settings);
        if (result.issues) throw new ConfigError(source, result.issues.map(formatIssue));
        return { name: stack, source, form: "single", hosts: [{ name: stack, source, label: stack, config: result.config }] };
    }
    if (!isMap(hosts) || Object.keys(hosts).length === 0)
        throw new ConfigError(source, [`${HOSTS_KEY}: is not a map of host names to their connection and settings`]);

    const problems: string[] = [];
    const inheritedProblems = new Map<string, string[]>();
    const settingsIssues: Issue[] = [];
    const connection = isMap(settings.connection) ? settings.connection : {};
    for (const key of ["address", "hostKey"] as const) {
        if (connection[key] !== undefined)
            settingsIssues.push({ path: ["connection", key], message: `is one host's: with ${HOSTS_KEY}, set it under ${HOSTS_KEY}.<name>.connection` });
    }
    findAdditions(settings, [], settingsIssues);
    problems.push(...settingsIssues.map(formatIssue));

    const parsed: EnvironmentHost[] = [];
    const formerHosts: string[] = [];
    const addresses = new Map<string, string>();
    for (const [name, entry] of Object.entries(hosts)) {
        const own = (issue: Issue) => problems.push(formatIssue({ ...issue, path: [HOSTS_KEY, name, ...issue.path] }));
        if (!HOST_NAME.test(name)) {
            own({ path: [], message: "is not a host name (lower-case letters, digits and '-', at most 63, as in a DNS label)" });
            continue;
        }
        if (!isMap(entry)) {
            own({ path: [], message: "is not a map (connection: {address, hostKey}, and any overrides)" });
            continue;
        }
        const { [FORMER_STACK_HOST]: former, ...overrides } = entry;
        if (former !== undefined && typeof former !== "boolean") own({ path: [FORMER_STACK_HOST], message: "is not true or false" });
        if (former === true) formerHosts.push(name);

        const mergeIssues: Issue[] = [];
        const merged = mergeOverrides(settings, overrides, mergeIssues) as RawMap;
        mergeIssues.forEach(own);
        const result = validate(merged);
        if (result.issues) {
            for (const issue of result.issues) {
                const origin = originOf(overrides, settings, issue.path);
                if (origin.from === "host") own({ ...origin, message: issue.message });
                else {
                    const text = formatIssue(issue);
                    inheritedProblems.set(text, [...(inheritedProblems.get(text) ?? []), name]);
                }
            }
            continue;
        }
        if (mergeIssues.length > 0) continue;
        const config = result.config;
        const endpoint = `${config.connection.address} port ${config.connection.port}`;
        const twin = addresses.get(endpoint);
        if (twin) own({ path: ["connection", "address"], message: `${endpoint} is host ${twin}'s too` });
        addresses.set(endpoint, name);
        parsed.push({
            name,
            source: hostSource(source, name),
            label: `${stack}/${name}`,
            config,
            ...(former === true && name !== stack ? { formerName: stack } : {}),
        });
    }
    for (const [text, names] of inheritedProblems) problems.push(`${text} (inherited by host${names.length === 1 ? "" : "s"} ${names.join(", ")})`);
    if (formerHosts.length > 1) problems.push(`${HOSTS_KEY}: ${formerHosts.join(", ")} each set ${FORMER_STACK_HOST}: only one host was the stack's`);
    if (problems.length > 0) throw new ConfigError(source, problems);
    return { name: stack, source, form: "hosts", hosts: parsed };
}

/** `{ add: [...] }` among the environment's own settings: there is nothing above them to add to. */
function findAdditions(value: unknown, path: Path, issues: Issue[]): void {
    if (isAddition(value)) issues.push({ path, message: "is { add: [...] }, which adds to an inherited list: only a host's overrides inherit" });
    else if (isMap(value)) for (const [key, child] of Object.entries(value)) findAdditions(child, [...path, key], issues);
}

/** A host of an environment, as the commands run them. */
export interface HostOfEnvironment {
    environment: Environment;
    host: EnvironmentHost;
}

/**
 * The hosts `--host` names in these environments (all of them without `--host`), in order. A
 * name that is a host of none of them is an error naming the hosts they have.
 */
export function selectHosts(environments: Environment[], names: string[]): HostOfEnvironment[] {
    const all = environments.flatMap((environment) => environment.hosts.map((host) => ({ environment, host })));
    const unknown = names.filter((name) => !all.some(({ host }) => host.name === name));
    if (unknown.length > 0) {
        const known = environments.map((environment) => `${environment.name}: ${environment.hosts.map((host) => host.name).join(", ")}`).join("; ");
        throw new ConfigError(
            "arguments",
            unknown.map(
                (name) => `--host ${name}: is not a host of ${environments.map((environment) => environment.name).join(" or ")} (known hosts: ${known})`,
            ),
        );
    }
    return names.length === 0 ? all : all.filter(({ host }) => names.includes(host.name));
}

/** Whether a key path may hold a secret: a secret key at the top or in a host's entry (`hosts.mor-2.tlsKey`). */
export function isSecretPath(path: readonly (string | number)[]): boolean {
    const key = path.at(-1);
    return (secretKeys as readonly unknown[]).includes(key) && (path.length === 1 || (path.length === 3 && path[0] === HOSTS_KEY));
}
