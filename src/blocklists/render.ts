// Blocklists: published lists of addresses and CIDRs (VoIP scanner lists, country ranges) in
// ipsets, one hash:net set per list and family, each dropped by one rule in the firewall's
// MORH-BLOCKLISTS chain before every service rule (firewall/render.ts). Trusted sources are
// exempt (a RETURN before the lists): they are named one by one by the operator, where a list is
// bulk data from elsewhere, and a trusted workstation in a cloud range must not lock the operator out.
//
// The country sets of `firewall.countries` (src/countries/) are sets of the same kind, loaded,
// persisted and drifted here with the lists' (morh-cc-*, beside the lists' morh-bl-*).
//
// This concern loads the sets (atomically: a new set swapped with the live one) and persists them
// in the file the distribution's loader reads at boot before the rules: ipset-persistent's
// /etc/iptables/ipsets on Debian, ipset-service's /etc/sysconfig/ipset on rhel.
import { createHash } from "node:crypto";
import type { OsFamily } from "../config/os";
import { families, familySuffix, type Family } from "../config/family";
import { changedLines } from "../render/changed-lines";
import { file, FILL_VIEWS_VARIABLE, sha256Hex, VIEW_MEMORY_DIR, type ConcernPlan } from "../render/artifact";
import type { RenderInput } from "../render/input";
import { renderTemplate } from "../render/templates";
import { MAX_ENTRIES } from "./parse";
import type { FirewallConfig } from "../firewall/schema";
import { ADMITTING_SET_PREFIX, countrySets, describeCountries } from "../countries/render";
import { usesCountries } from "../countries/schema";
import type { Blocklist } from "./schema";

export const BLOCKLIST_CHAIN = "MORH-BLOCKLISTS";
/** The sets this concern owns: the lists' and the countries' (a basic regular expression). */
export const OWNED_SETS = "^morh-\\(bl\\|cc\\)-";
/**
 * `retire_set NAME`: a set of ours no longer wanted is destroyed; one a rule still uses (the
 * firewall's, until its own transaction) is emptied when it drops (a list's, the blocked
 * countries'), and kept whole when it admits (a service's countries): emptied, it would close its
 * service to all but trusted sources meanwhile.
 */
export const RETIRE_SET = `retire_set() { ipset -q destroy "$1" || case $1 in ${ADMITTING_SET_PREFIX}*) ;; *) ipset flush "$1" ;; esac; }`;
const DESTROY_SETS = `${RETIRE_SET}; for set in $(ipset list -n 2>/dev/null | grep '${OWNED_SETS}'); do retire_set "$set"; done`;
/** The plan's one artifact, the sets file (its index, for the changed lines an apply leaves). */
const SETS_FILE = 0;
const persistPaths: Record<OsFamily, string> = { debian: "/etc/iptables/ipsets", rhel: "/etc/sysconfig/ipset" };
/**
 * Where the boot's guard against a sets file that did not load lives (templates/blocklists/ensure-sets.sh.hbs):
 * Debian's netfilter-persistent runs its plugins in name order (run-parts), so 14- comes after 10-ipset
 * and before 15-ip4tables; on rhel a script the iptables units run first (their drop-ins).
 */
export const ENSURE_SETS_PLUGIN = "/usr/share/netfilter-persistent/plugins.d/14-mor-harden-sets";
const ENSURE_SETS_SCRIPT = "/usr/local/sbin/mor-harden-ensure-sets";
const ensureSetsDropIn = (unit: string) => `/etc/systemd/system/${unit}.service.d/mor-harden-sets.conf`;
const packages: Record<OsFamily, string[]> = { debian: ["ipset", "ipset-persistent"], rhel: ["ipset", "ipset-service"] };
const inet: Record<Family, string> = { v4: "inet", v6: "inet6" };

const RHEL_ENABLE_IPSET_SERVICE = `systemctl enable ipset >/dev/null 2>&1 || { echo 'cannot enable ipset.service (ipset-service): the blocklist sets would not be loaded at boot, before the rules that name them' >&2; exit 1; }`;

export const blocklistSet = (name: string, family: Family) => `morh-bl-${name}-${familySuffix[family]}`;

/** The `ipset create` arguments of a list's set (after the name), the same wherever it is created. */
export const setCreateOptions = (family: Family) => `hash:net family ${inet[family]} maxelem ${MAX_ENTRIES}`;

/** One set of this concern: a list's or the countries' of one family. */
export interface ManagedSet {
    set: string;
    family: Family;
    entries: string[];
}

/** Every set of a stack's firewall: the lists' and the countries'. */
export function managedSets(firewall: Pick<FirewallConfig, "blocklists" | "countries">): ManagedSet[] {
    const lists = firewall.blocklists.flatMap((list) =>
        families.map((family) => ({ set: blocklistSet(list.name, family), family, entries: list.entries[family] })),
    );
    return [...lists, ...countrySets(firewall.countries)];
}

/** Whether a stack's firewall has sets for this concern to load. */
export const hasSets = (firewall: Pick<FirewallConfig, "blocklists" | "countries">) => firewall.blocklists.length > 0 || usesCountries(firewall.countries);

/** `ipset -exist create` of every set: the firewall's rules can be loaded (and tested) once they exist. */
export function createSetsCommand(sets: ManagedSet[]): string {
    return sets.map(({ set, family }) => `ipset -exist create ${set} ${setCreateOptions(family)}`).join(" && ");
}

/** sha256 of a set's entries, sorted, one a line: what the live view prints for a set that matches. */
export function entriesDigest(entries: string[]): string {
    // One update of the joined text: an update an entry costs a call into the hash each.
    return createHash("sha256")
        .update(entries.length > 0 ? `${entries.join("\n")}\n` : "")
        .digest("hex");
}

/**
 * The sets, named in byte order of `NAME ` (the order both parts of the sets file follow;
 * entries hold no space, so it is also the byte order of their lines).
 */
function setsInFileOrder(sets: ManagedSet[]): ManagedSet[] {
    return [...sets].sort((a, b) => (`${a.set} ` < `${b.set} ` ? -1 : 1));
}

/** Rendered sets files by their sets' names and digests (every host of an environment shares them); the last few. */
const renderedSetsFiles = new Map<string, { content: string; sha256: string }>();
const KEPT_SETS_FILES = 4;

/**
 * The sets in `ipset save` format (and its sha256): what the boot loader restores and the apply swaps in. Every
 * create line first, then every add line, each part in byte order, whatever the lists' order
 * in the stack: the host merges a change into it with `sort -m` (merge.sh.hbs), and reordering
 * the lists changes nothing. Rendered once per process for sets every host shares.
 */
export function renderSetsFile(unordered: ManagedSet[]): { content: string; sha256: string } {
    const sets = setsInFileOrder(unordered);
    const key = sets.map(({ set, entries }) => `${set}:${digestOf(entries)}`).join(" ");
    const kept = renderedSetsFiles.get(key);
    if (kept !== undefined) return kept;
    const creates = sets.map(({ set, family }) => `create ${set} ${setCreateOptions(family)}\n`).join("");
    const adds = sets.map(({ set, entries }) => (entries.length > 0 ? `add ${set} ${entries.join(`\nadd ${set} `)}\n` : "")).join("");
    const content = creates + adds;
    const rendered = { content, sha256: sha256Hex(content) };
    renderedSetsFiles.set(key, rendered);
    if (renderedSetsFiles.size > KEPT_SETS_FILES) renderedSetsFiles.delete(renderedSetsFiles.keys().next().value!);
    return rendered;
}

/** The firewall's MORH-BLOCKLISTS chain for one family: trusted sources return, then each list drops, then the blocked countries. */
export function blocklistRules(lists: Blocklist[], trusted: string[], family: Family, blockedCountriesSet?: string): string[] {
    return [
        ...trusted.map((address) => `-s ${address} -j RETURN`),
        ...lists.map((list) => `-m set --match-set ${blocklistSet(list.name, family)} src -j DROP`),
        ...(blockedCountriesSet ? [`-m set --match-set ${blockedCountriesSet} src -j DROP`] : []),
    ];
}

/** `NAME COUNT` of every set, one a line in file order: what the sets hold once a change is loaded. */
const setCounts = (sets: ManagedSet[]) => setsInFileOrder(sets).map(({ set, entries }) => `${set} ${entries.length}`);

const digests = new WeakMap<string[], string>();
/** entriesDigest, once per list and family in a process (the lists are shared by every host). */
function digestOf(entries: string[]): string {
    let digest = digests.get(entries);
    if (digest === undefined) digests.set(entries, (digest = entriesDigest(entries)));
    return digest;
}

/** The boot's guard: every set created empty where the sets file did not load it (ENSURE_SETS_PLUGIN). */
function ensureSetsArtifacts(stack: string, os: OsFamily, sets: ManagedSet[], setsFile: string) {
    const script = (plugin: boolean) =>
        renderTemplate("blocklists/ensure-sets.sh.hbs", {
            stack,
            plugin,
            setsFile,
            // In the sets file's order: reordering the lists in the stack changes nothing here either.
            sets: setsInFileOrder(sets).map(({ set, family }) => ({ name: set, options: setCreateOptions(family) })),
        });
    if (os === "debian") return [file(ENSURE_SETS_PLUGIN, script(true), { mode: "0755" })];
    const dropIn = `# Managed by mor-harden (stack ${stack}): the sets the rules name exist before they load.\n[Service]\nExecStartPre=-${ENSURE_SETS_SCRIPT}\n`;
    return [file(ENSURE_SETS_SCRIPT, script(false), { mode: "0755" }), file(ensureSetsDropIn("iptables"), dropIn), file(ensureSetsDropIn("ip6tables"), dropIn)];
}

export function renderBlocklists(input: RenderInput): ConcernPlan | undefined {
    const { os, firewall } = input.config;
    const lists = firewall.blocklists;
    if (!hasSets(firewall)) return undefined;
    const sets = managedSets(firewall);
    const path = persistPaths[os];
    const checks = sets.map(({ set, entries }) => `${set}:${digestOf(entries)}`);
    const expected = sets.map(({ set, entries }) => `${set} ${entries.length} ${digestOf(entries)}`);
    const setsFile = renderSetsFile(sets);
    const loadSets = { file: path, owned: OWNED_SETS, retireSet: RETIRE_SET };
    const liveView = renderTemplate("blocklists/live-view.sh.hbs", {
        file: path,
        fileDigest: setsFile.sha256,
        checks,
        fillVariable: FILL_VIEWS_VARIABLE,
        seenFile: `${VIEW_MEMORY_DIR}/blocklist-listings`,
    }).trim();
    return {
        concern: "blocklists",
        summary: [
            ...lists.map(
                (list) =>
                    `${list.name}: ${list.entries.v4.length} IPv4 and ${list.entries.v6.length} IPv6 entries from ${list.file}, dropped before every service (trusted sources exempt)`,
            ),
            ...describeCountries(firewall.countries),
        ],
        packages: packages[os],
        // Large lists: drift compares digests, never the content, and an apply sends only the changed lines.
        artifacts: [
            file(path, setsFile.content, { mode: "0640", bulk: true, merge: renderTemplate("blocklists/merge.sh.hbs", {}).trim() }),
            ...ensureSetsArtifacts(input.stack, os, sets, path),
        ],
        // rhel: ipset-service loads /etc/sysconfig/ipset at boot, before iptables. Without it the
        // boot's iptables-restore fails on rules naming sets that do not exist, and the host comes
        // up without its firewall: a failure to enable it stops the apply.
        prepare: os === "rhel" ? [RHEL_ENABLE_IPSET_SERVICE, "systemctl daemon-reload"] : [],
        validate: [renderTemplate("blocklists/validate.sh.hbs", { file: path, ...changedLines(SETS_FILE) }).trim()],
        // No snapshot (a 100,000-entry `ipset save` costs more than the change): a rollback loads the
        // sets from the file as it was before, which the engine has put back by then; without one
        // (the first apply), the sets go.
        snapshot: [],
        activate: [renderTemplate("blocklists/load-sets.sh.hbs", { ...loadSets, changes: changedLines(SETS_FILE), counts: setCounts(sets).join("\n") }).trim()],
        verify: [],
        rollback: [
            `if [ -e ${path} ]; then ${renderTemplate("blocklists/load-sets.sh.hbs", { ...loadSets, changes: false }).trim()}
else ${DESTROY_SETS}; fi`,
        ],
        rollbackCheck: [],
        deactivate: [DESTROY_SETS],
        // 100,000 entries take a while to list: the view runs beside the rest of a read.
        liveViews: [{ name: "blocklist sets", live: liveView, expected: { text: expected.join("\n") }, background: true }],
        // A set alone can shut the operator out with no rule changed (a list or a country database
        // that now holds the operator's address, a service's countries narrowed): the firewall's
        // transaction would be unchanged, so this one waits for a new login itself.
        needsConfirm: true,
    };
}
