// fail2ban names each jail's filter thread "f2b/f.<jail>" (fail2ban/server/filter.py, Filter's
// constructor: `self.name="f2b/f."+self.jailName`); the kernel keeps 15 characters of a thread's
// name (TASK_COMM_LEN 16). Reading the thread names tells which jails run, without a Python start.

/** The name the kernel shows for a jail's filter thread. */
export const jailThreadName = (jail: string) => `f2b/f.${jail}`.slice(0, 15);

/** The jails by the thread name they show: jails whose names cut alike share one. */
export function jailsByThread(jails: readonly string[]): Map<string, string[]> {
    const byThread = new Map<string, string[]>();
    for (const jail of jails) {
        const thread = jailThreadName(jail);
        byThread.set(thread, [...(byThread.get(thread) ?? []), jail]);
    }
    return byThread;
}
