// One SSH connection to one host, over ssh2. The host key is pinned and checked fail-closed
// (ssh2 accepts any key unless hostVerifier says otherwise); commands run one at a time as
// `sh -s` with the script on stdin, so nothing is quoted twice and per-connection session
// limits (OpenSSH MaxSessions 10) are never reached. Every exec is one round trip, counted.
import { createHash } from "node:crypto";
// ssh2 is loaded on the first connection: commands that never connect (render, --help) skip its
// load (~35 ms on the CI machine).
import type { Client, ConnectConfig } from "ssh2";

export interface SessionTarget {
    address: string;
    port: number;
    user: string;
    /** "SHA256:..." as `ssh-keygen -lf` prints it. */
    hostKey: string;
    sudo: boolean;
    privateKey?: string;
    passphrase?: string;
    /** Path of an ssh-agent socket, used when no private key is given. */
    agent?: string;
    connectTimeoutSeconds: number;
    commandTimeoutSeconds: number;
    /** Runs before every connection: port knocking, when the host hides SSH behind it. */
    preConnect?: () => Promise<void>;
}

export interface CommandResult {
    code: number;
    stdout: string;
    stderr: string;
}

export class HostKeyMismatchError extends Error {
    constructor(
        readonly address: string,
        readonly expected: string,
        readonly seen: string,
    ) {
        super(
            `host key mismatch for ${address}: expected ${expected}, the host presented ${seen}; refusing to connect (update connection.hostKey only if the host was really re-keyed)`,
        );
        this.name = "HostKeyMismatchError";
    }
}

/**
 * A command whose end was not seen: it timed out, or the connection was lost while it ran. The
 * script may still be running on the host (mor-harden's scripts ignore SIGHUP), so its outcome
 * is unknown until asked over a new connection.
 */
export class CommandInterruptedError extends Error {
    constructor(
        readonly address: string,
        readonly reason: "timeout" | "connection-lost",
        detail: string,
    ) {
        super(`ssh ${address}: ${detail}`);
        this.name = "CommandInterruptedError";
    }
}

/** The fingerprint of a raw SSH public key blob, as `ssh-keygen -lf` prints it. */
export function fingerprintOf(keyBlob: Buffer): string {
    return `SHA256:${createHash("sha256").update(keyBlob).digest("base64").replace(/=+$/, "")}`;
}

// Modern algorithms only: the client never agrees to less than the hardened sshd offers.
const algorithms: ConnectConfig["algorithms"] = {
    kex: ["curve25519-sha256", "curve25519-sha256@libssh.org", "diffie-hellman-group16-sha512", "diffie-hellman-group18-sha512", "ecdh-sha2-nistp256"],
    // AES-GCM first: ssh2 runs it wholly in Node's crypto (OpenSSL, AES-NI), while its
    // chacha20-poly1305 computes Poly1305 in WebAssembly unless ssh2's optional native binding
    // was built (it is not: install scripts do not run). Both are AEAD ciphers OpenSSH offers by
    // default (ssh2 README "Supported algorithms"; sshd_config(5) Ciphers).
    cipher: ["aes256-gcm@openssh.com", "aes128-gcm@openssh.com", "chacha20-poly1305@openssh.com", "aes256-ctr", "aes128-ctr"],
    serverHostKey: ["ssh-ed25519", "rsa-sha2-512", "rsa-sha2-256", "ecdsa-sha2-nistp256"],
    hmac: ["hmac-sha2-512-etm@openssh.com", "hmac-sha2-256-etm@openssh.com", "hmac-sha2-512", "hmac-sha2-256"],
    // No compression: ssh2 1.17's zlib throws an uncatchable "Invalid Zlib instance" when a
    // channel closes after its connection was lost (test/apply/protocol.test.ts). Drift's script,
    // the one sent on every check, is gzip'd by the caller instead (render/shell.ts gzippedScript).
    compress: ["none"],
};

export class HostSession {
    /** Commands run over this connection (each one is a round trip). */
    roundTrips = 0;
    bytesSent = 0;
    bytesReceived = 0;
    private closed = false;
    /** Called when the connection goes while a command runs. */
    private onLost = new Set<(why: string) => void>();

    private constructor(
        private readonly client: Client,
        readonly target: SessionTarget,
    ) {
        const lost = (why: string) => {
            this.closed = true;
            for (const notify of [...this.onLost]) notify(why);
        };
        client.on("close", () => lost("the connection closed"));
        client.on("error", (error: Error) => lost(error.message));
    }

    /**
     * Connects, retrying a refused connection a few times (sshd restarting, another operator's
     * reload) for at most `seconds`; anything else fails at once.
     */
    static async connectPatiently(target: SessionTarget, seconds = 10): Promise<HostSession> {
        const deadline = Date.now() + seconds * 1000;
        for (;;) {
            try {
                return await HostSession.connect(target);
            } catch (error) {
                if (!/ECONNREFUSED|ECONNRESET/.test((error as Error).message) || Date.now() >= deadline) throw error;
                await new Promise((resolve) => setTimeout(resolve, 1000));
            }
        }
    }

    /**
     * A login started now, for work that first computes what to send (issue 23: a drift's or an
     * apply's render and name lookups run while the SSH handshake is under way, instead of before
     * it). `take()` hands the session over (its taker closes it) or rejects as `connect` would;
     * `discard()`, when the work stopped before taking it, closes it once it is open. A failed
     * login nobody took is not an unhandled rejection.
     */
    static startLogin(target: SessionTarget): { take(): Promise<HostSession>; discard(): void } {
        const connecting = HostSession.connect(target);
        connecting.catch(() => undefined);
        let taken = false;
        return {
            take: () => {
                taken = true;
                return connecting;
            },
            discard: () => {
                if (taken) return;
                taken = true;
                connecting.then(
                    (session) => session.close(),
                    () => undefined,
                );
            },
        };
    }

    /** Connects, checks the pinned host key and authenticates; rejects with a clear reason. */
    static async connect(target: SessionTarget): Promise<HostSession> {
        if (target.preConnect) await target.preConnect();
        return new Promise((resolve, reject) => {
            const client = new (require("ssh2") as typeof import("ssh2")).Client();
            let seen: string | undefined;
            const config: ConnectConfig = {
                host: target.address,
                port: target.port,
                username: target.user,
                readyTimeout: target.connectTimeoutSeconds * 1000,
                keepaliveInterval: 10_000,
                keepaliveCountMax: 3,
                algorithms,
                hostVerifier: (key: Buffer) => {
                    seen = fingerprintOf(key);
                    return seen === target.hostKey;
                },
            };
            if (target.privateKey) {
                config.privateKey = target.privateKey;
                config.passphrase = target.passphrase;
            } else if (target.agent) {
                config.agent = target.agent;
            }
            let settled = false;
            // Each command is a few small packets each way (channel open, exec, data, EOF): with
            // Nagle's algorithm on, the next one waits for the host's delayed ACK (~40 ms a round
            // trip, measured: `true` 88 ms a command on one connection, 6 ms without).
            client.once("connect", () => client.setNoDelay(true));
            client.once("ready", () => {
                settled = true;
                resolve(new HostSession(client, target));
            });
            // Listened to for the whole life of the client: a connection can fail more than once
            // (a reset after a failed handshake), and an unheard error would end the process.
            client.on("error", (error: Error & { level?: string }) => {
                client.end();
                if (settled) return;
                settled = true;
                if (seen !== undefined && seen !== target.hostKey) return reject(new HostKeyMismatchError(target.address, target.hostKey, seen));
                const what =
                    error.level === "client-authentication"
                        ? "authentication failed (is the key authorized on the host?)"
                        : /timed out/i.test(error.message)
                          ? `${error.message} (connection.connectTimeout ${target.connectTimeoutSeconds} s)`
                          : error.message;
                reject(new Error(`ssh ${target.user}@${target.address}:${target.port}: ${what}`));
            });
            client.connect(config);
        });
    }

    /** Runs a shell script on the host (through sudo when the user is not root). */
    run(script: string, timeoutSeconds = this.target.commandTimeoutSeconds, lock?: { marker: string; waitSeconds: number }): Promise<CommandResult> {
        if (this.closed) return Promise.reject(new Error(`ssh ${this.target.address}: the connection is closed`));
        this.roundTrips++;
        this.bytesSent += Buffer.byteLength(script);
        const command = this.target.sudo ? "sudo -n sh -s" : "sh -s";
        const address = this.target.address;
        return new Promise((resolve, reject) => {
            let done = false;
            const settle = (action: () => void) => {
                if (done) return;
                done = true;
                clearTimeout(timer);
                this.onLost.delete(lost);
                action();
            };
            const lost = (why: string) =>
                settle(() => reject(new CommandInterruptedError(address, "connection-lost", `the connection was lost while a command ran (${why})`)));
            this.onLost.add(lost);
            const expire = (what: string) => () => settle(() => reject(new CommandInterruptedError(address, "timeout", what)));
            // A script that first waits for the host's lock gets that wait on top of its own time,
            // which starts when it prints the lock's marker.
            let timer = lock
                ? setTimeout(expire(`waited more than ${lock.waitSeconds} s for the host's mor-harden lock`), (lock.waitSeconds + timeoutSeconds) * 1000)
                : setTimeout(expire(`a command timed out after ${timeoutSeconds} s (connection.commandTimeout)`), timeoutSeconds * 1000);
            let locked = !lock;
            this.client.exec(command, (error, stream) => {
                if (error) return settle(() => reject(new Error(`ssh ${address}: ${error.message}`)));
                const stdout: Buffer[] = [];
                const stderr: Buffer[] = [];
                stream.on("data", (chunk: Buffer) => {
                    stdout.push(chunk);
                    if (!locked && lock && !done && Buffer.concat(stdout).includes(lock.marker)) {
                        locked = true;
                        clearTimeout(timer);
                        timer = setTimeout(expire(`a command timed out after ${timeoutSeconds} s (connection.commandTimeout)`), timeoutSeconds * 1000);
                    }
                });
                stream.stderr.on("data", (chunk: Buffer) => stderr.push(chunk));
                stream.on("close", (code: number | null | undefined, signal?: string) => {
                    const out = Buffer.concat(stdout);
                    const err = Buffer.concat(stderr);
                    this.bytesReceived += out.length + err.length;
                    // No exit status and no signal: the channel went with the connection.
                    if (code == null && !signal) return lost("no exit status");
                    settle(() => resolve({ code: code ?? 128, stdout: out.toString("utf8"), stderr: err.toString("utf8") }));
                });
                stream.end(script);
                if (done) stream.close();
            });
        });
    }

    /** The connection is gone (closed here, or lost). */
    get isClosed(): boolean {
        return this.closed;
    }

    close(): void {
        this.closed = true;
        this.client.end();
    }
}
