// Runs inside the lab's workstation namespace (where the hosts are reachable), for bench/cli.ts:
//   node cli-runner.js time SPEC_JSON    whole processes, as users run them, started together;
//                                        prints one JSON line: wall seconds, the children's CPU
//                                        seconds (user + system, from the shell's `times`),
//                                        failures, the first command's output
//   node cli-runner.js relay SPEC_JSON   a TCP relay a port per host that holds every chunk
//                                        delayMs each way (a WAN's round trip); ends by itself
import { spawn } from "node:child_process";
import { connect, createServer, type Socket } from "node:net";

interface TimeSpec {
    /** Each argv runs as its own process; all start at once. */
    commands: string[][];
    /** Exit codes that count as success. */
    ok: number[];
}

interface RelaySpec {
    delayMs: number;
    listen: string;
    /** listen port -> the host address whose port 22 it relays to. */
    ports: [number, string][];
    lifetimeSeconds: number;
}

/** Runs argv under sh, whose `times` (on fd 3) gives the CPU the command used, children included. */
function timed(argv: string[]): Promise<{ code: number; cpu: number; stderr: string; stdout: string }> {
    return new Promise((resolve) => {
        const child = spawn("sh", ["-c", '"$@"; rc=$?; times >&3; exit $rc', "sh", ...argv], { stdio: ["ignore", "pipe", "pipe", "pipe"] });
        let stdout = "";
        let stderr = "";
        child.stdout!.on("data", (chunk: Buffer) => (stdout = (stdout + chunk.toString()).slice(-1_000_000)));
        let times = "";
        child.stderr!.on("data", (chunk: Buffer) => (stderr = (stderr + chunk.toString()).slice(-2000)));
        child.stdio[3]!.on("data", (chunk: Buffer) => (times += chunk.toString()));
        child.on("close", (code) => {
            // dash prints the shell's own times, then its children's: "0m0.210000s 0m0.030000s".
            const children = times.trim().split("\n").at(-1) ?? "";
            const cpu = [...children.matchAll(/(\d+)m([\d.]+)s/g)].reduce((sum, [, minutes, seconds]) => sum + Number(minutes) * 60 + Number(seconds), 0);
            resolve({ code: code ?? 128, cpu, stderr, stdout });
        });
    });
}

async function time(spec: TimeSpec): Promise<void> {
    const started = process.hrtime.bigint();
    const results = await Promise.all(spec.commands.map(timed));
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    const failed = results.filter((result) => !spec.ok.includes(result.code));
    process.stdout.write(
        JSON.stringify({
            seconds,
            cpu: results.reduce((sum, result) => sum + result.cpu, 0),
            failures: failed.length,
            errors: failed.slice(0, 2).map((result) => `exit ${result.code}: ${result.stderr} ${result.stdout.slice(-2000)}`),
            stdout: results[0]?.stdout ?? "",
        }) + "\n",
    );
}

function relay(spec: RelaySpec): void {
    const hold = (from: Socket, to: Socket) => from.on("data", (chunk: Buffer) => setTimeout(() => to.write(chunk), spec.delayMs));
    for (const [port, address] of spec.ports) {
        createServer((client) => {
            client.setNoDelay(true);
            const server = connect(22, address);
            server.setNoDelay(true);
            hold(client, server);
            hold(server, client);
            const end = () => (client.destroy(), server.destroy());
            for (const socket of [client, server]) socket.on("close", end).on("error", end);
        }).listen(port, spec.listen);
    }
    // Bounded: the relay ends by itself (bench/cli.ts also kills it when done).
    setTimeout(() => process.exit(0), spec.lifetimeSeconds * 1000).unref();
    process.stdout.write("listening\n");
}

const [mode, spec] = process.argv.slice(2);
if (mode === "time") {
    time(JSON.parse(spec) as TimeSpec).catch((error: Error) => (console.error(error.message), process.exit(1)));
} else if (mode === "relay") {
    relay(JSON.parse(spec) as RelaySpec);
} else {
    console.error(`cli-runner: unknown mode "${mode}" (time, relay)`);
    process.exit(1);
}
