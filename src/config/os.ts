import { z } from "zod";

/** MOR runs on CentOS/Rocky/Alma (rhel); Debian hosts are the lab and some newer installs. */
export const osFamily = z.enum(["debian", "rhel"], {
    error: (iss) => `${JSON.stringify(iss.input)} is not an OS family (debian or rhel)`,
});
export type OsFamily = z.infer<typeof osFamily>;

/**
 * What renderers need to know about the host beyond the stack file. Read from the host before an
 * apply; `render` without a host assumes the defaults of the OS family (or the stack's `host` key).
 */
export interface HostFacts {
    /** [major, minor] of the installed OpenSSH server. */
    openssh: [number, number];
}

/** Debian 12 ships OpenSSH 9.2; Rocky/Alma 9 ship 8.7. */
export function defaultFacts(os: OsFamily): HostFacts {
    return { openssh: os === "debian" ? [9, 2] : [8, 7] };
}

export function atLeast(version: [number, number], major: number, minor: number): boolean {
    return version[0] > major || (version[0] === major && version[1] >= minor);
}
