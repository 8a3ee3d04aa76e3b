// mor-harden's own ban action: ipsets matched first in INPUT, a Python action of fail2ban
// (templates/fail2ban/action.d/mor-harden-ipset.py says why, and how restarts and the journal work). Every jail names it
// explicitly, so a per-jail `action` in MOR's jail.conf (iptables[name=SSH, ...], sendmail-whois)
// is never inherited.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { file, type Artifact } from "../render/artifact";
import { findTemplatesDir } from "../render/templates";

export const BAN_ACTION = "mor-harden-ipset";
export const BAN_ACTION_FILE = `/etc/fail2ban/action.d/${BAN_ACTION}.py`;
/** Where each jail's ban journal is kept (what its sets are loaded from at a start): the action's default journaldir. */
export const BAN_JOURNAL_DIR = "/var/lib/mor-harden/fail2ban";
/** ipset's largest timeout (seconds); a longer ban is kept in a set without timeout and lifted by fail2ban. */
export const IPSET_MAX_TIMEOUT = 4294967;

export interface BanSets {
    /** The set's timeout: the ban time, or 0 for a set without timeout. */
    timeout: number;
    /** Base name; the sets are `<set>-4` and `<set>-6`. */
    set: string;
    /** The base name of the other kind (timed or permanent), removed when the jail's ban time changes kind. */
    otherSet: string;
}

/** The sets of a jail with `bantime` seconds (-1 permanent). */
export function banSets(jail: string, bantime: number): BanSets {
    const timeout = bantime < 0 || bantime > IPSET_MAX_TIMEOUT ? 0 : bantime;
    const permanent = `morh-ban-${jail}`;
    const timed = `${permanent}-t`;
    return timeout === 0 ? { timeout, set: permanent, otherSet: timed } : { timeout, set: timed, otherSet: permanent };
}

/**
 * The value of a jail's `action =` line: the action's settings are its options (fail2ban passes
 * them to the action's __init__ and reload). `journalDir` (tests keep theirs apart) is written only
 * when it is not the action's default, BAN_JOURNAL_DIR: at the first reload after an upgrade,
 * fail2ban calls reload() of the instance already running (fail2ban/server/actions.py,
 * Actions.add and Actions.reload), whose code may know no such option, and a TypeError there
 * ends the reload of every jail after it.
 */
export function banActionLine(jail: string, bantime: number, journalDir = BAN_JOURNAL_DIR): string {
    const { timeout, set, otherSet } = banSets(jail, bantime);
    const journal = journalDir === BAN_JOURNAL_DIR ? "" : `, journaldir=${journalDir}`;
    return `${BAN_ACTION}.py[settimeout=${timeout}, set=${set}, otherset=${otherSet}${journal}]`;
}

/** The action's source: a plain Python file, the same on every host (its settings are in the action line). */
export function banActionSource(): string {
    return readFileSync(join(findTemplatesDir(), `fail2ban/action.d/${BAN_ACTION}.py`), "utf8");
}

export function banActionFile(): Artifact {
    return file(BAN_ACTION_FILE, banActionSource());
}
