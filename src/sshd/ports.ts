import type { ConnectionConfig } from "../config/connection";
import type { SshdConfig } from "./schema";

/**
 * The ports sshd listens on: sshd.port, and connection.port while they differ (SSH moving to a
 * new port). Every firewall and sshd change is confirmed by a new login on connection.port, so
 * sshd keeps listening there until the stack's connection.port follows sshd.port; then the old
 * port closes. A forwarded connection port (NAT, a relay) is not sshd's to listen on.
 */
export function sshdPorts(config: { sshd: Pick<SshdConfig, "port">; connection: Pick<ConnectionConfig, "port" | "forwarded"> }): number[] {
    const { sshd, connection } = config;
    return connection.forwarded || connection.port === sshd.port ? [sshd.port] : [sshd.port, connection.port];
}
