// Python programs that talk to the running fail2ban-server through its own socket client, run by
// the interpreter fail2ban-client's first line names: fail2ban's modules are installed for that
// Python only (the system's python3 may not be it, or may not exist).
import { shellQuote } from "../render/shell";
import { renderTemplate } from "../render/templates";

/** Shell that runs the Python `source` with fail2ban's Python; it fails when fail2ban-client is not installed. */
export function withFail2banPython(source: string): string {
    // The interpreter line may carry options (#!/usr/bin/python3 -s): $morh_python stays unquoted.
    return `morh_client=$(command -v fail2ban-client) && morh_python=$(sed -n '1s/^#! *//p' "$morh_client") && \${morh_python:-python3} -c ${shellQuote(source)}`;
}

/**
 * Shell that runs `program` (after templates/fail2ban/socket.py.hbs: CSocket, SOCKET, ask) with
 * fail2ban's Python; it fails when fail2ban-client is not installed.
 */
export function fail2banPython(program: string): string {
    return withFail2banPython(`${renderTemplate("fail2ban/socket.py.hbs", {})}\n\n${program}`);
}
