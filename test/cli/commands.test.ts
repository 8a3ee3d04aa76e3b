// The CLI's start and its target builder, judged from outside: what a start loads, and the
// arguments every command refuses with exit 2 before any host is touched.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, realpathSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { describe, it } from "node:test";
import { reasonOf } from "../../src/apply/run-hosts";
import { ConfigError } from "../../src/config/schema";
import { BIN_DIR, CLI_FILE } from "../../src/cli/bin";
import { BUNDLE_CONTENTS_FILE, COMMAND_MODULES } from "../../src/cli/bundle";

const projectDir = join(__dirname, "..", "..", "..");
const cli = CLI_FILE;
const run = (...args: string[]) => spawnSync("node", [cli, ...args], { cwd: projectDir, encoding: "utf8", timeout: 60_000 });

/** The modules a CLI run loaded (require's cache as the process ends), printed on stderr by a preload. */
function modulesLoaded(...args: string[]): string[] {
    const dir = mkdtempSync(join(tmpdir(), "mor-harden-cli-"));
    const preload = join(dir, "preload.js");
    writeFileSync(preload, `process.on("exit", () => require("node:fs").writeSync(2, "\\nMODULES " + JSON.stringify(Object.keys(require.cache)) + "\\n"));\n`);
    const result = spawnSync("node", ["-r", preload, cli, ...args], { cwd: projectDir, encoding: "utf8", timeout: 60_000 });
    assert.equal(result.status, 0, result.stderr);
    const line = result.stderr.split("\n").find((text) => text.startsWith("MODULES "));
    assert.ok(line, result.stderr);
    return JSON.parse(line.slice("MODULES ".length)) as string[];
}

// What a command needs only once it runs (issue 23: every CI job starts the CLI).
const heavy = ["zod", "yaml", "ssh2", "@pulumi", "handlebars", "diff"];
/** What each file of dist/bin/ was bundled from (written by src/cli/bundle.ts). */
const bundleContents = () => JSON.parse(readFileSync(BUNDLE_CONTENTS_FILE, "utf8")) as Record<string, string[]>;
const inBin = (loaded: string[]) => loaded.filter((path) => path.startsWith(BIN_DIR + "/")).map((path) => path.slice(BIN_DIR.length + 1));

describe("mor-harden's start", () => {
    it("the entry is bundled from commander and the command definitions only", () => {
        const inputs = bundleContents()["mor-harden.js"];
        assert.ok(
            inputs.some((path) => path.startsWith("node_modules/commander/")),
            "commander is in the entry (the contents list its inputs)",
        );
        for (const name of heavy)
            assert.deepEqual(
                inputs.filter((path) => path.startsWith(`node_modules/${name}/`)),
                [],
                `${name} is not in the entry`,
            );
        assert.deepEqual(
            inputs.filter((path) => /^dist\/src\/(apply|drift|ssh|provider|pulumi|compose)\//.test(path)),
            [],
            "no command module is in the entry",
        );
    });

    it("each command's file holds its command and what it needs, Pulumi never", () => {
        const contents = bundleContents();
        for (const command of COMMAND_MODULES) {
            const inputs = contents[`${command}.js`];
            assert.ok(inputs.includes(`dist/src/cli/${command}.js`), `${command}.js holds dist/src/cli/${command}.js`);
            assert.deepEqual(
                inputs.filter((path) => path.startsWith("node_modules/@pulumi/")),
                [],
                `${command}.js holds no @pulumi module`,
            );
        }
        assert.ok(contents["drift.js"].includes("dist/src/render/templates.compiled.js"), "the precompiled templates are bundled");
    });

    it("each command's file is ASCII, with zod's English locale alone (V8 holds a file with one other character as two bytes a character)", () => {
        const contents = bundleContents();
        for (const command of COMMAND_MODULES) {
            assert.deepEqual(
                contents[`${command}.js`].filter((path) => path.startsWith("node_modules/zod/v4/locales/")),
                ["node_modules/zod/v4/locales/en.cjs"],
                `${command}.js`,
            );
            const bytes = readFileSync(join(BIN_DIR, `${command}.js`));
            assert.equal(
                bytes.findIndex((byte) => byte > 0x7f),
                -1,
                `${command}.js is ASCII`,
            );
        }
    });

    it("zod's own messages are English in the bundle", () => {
        const dir = mkdtempSync(join(tmpdir(), "mor-harden-cli-"));
        const stack = join(dir, "Pulumi.zod.yaml");
        writeFileSync(
            stack,
            "config:\n  mor-harden:os: debian\n  mor-harden:connection:\n    address: 192.0.2.1\n    hostKey: SHA256:ZAluXC9ZQw1+qLJbtmBKV2nAwPvCe430vgjaXinZ7l8\n  mor-harden:firewall:\n    trusted: 5\n",
        );
        try {
            const result = run("render", "--config", stack);
            assert.equal(result.status, 2, result.stderr + result.stdout);
            assert.match(result.stderr, /firewall\.trusted: Invalid input: expected array, received number/);
        } finally {
            rmSync(dir, { recursive: true, force: true });
        }
    });

    for (const args of [["--help"], ["drift", "--help"], ["apply", "--help"], ["audit", "--help"]]) {
        it(`loads the entry only for ${args.join(" ")}`, () => {
            const loaded = modulesLoaded(...args);
            assert.deepEqual(inBin(loaded), ["mor-harden.js"], "the preload sees the entry and no command's file");
            assert.deepEqual(
                loaded.filter((path) => path.includes("/node_modules/")),
                [],
                "nothing from node_modules outside the entry",
            );
        });
    }

    it("checks 25 hosts at once and applies 10 by default, as the README's fleet figures assume", () => {
        for (const [command, concurrency] of [
            ["drift", 25],
            ["apply", 10],
            ["audit", 10],
        ] as const) {
            const help = run(command, "--help");
            assert.match(help.stdout.replace(/\s+/g, " "), new RegExp(`--concurrency <n> [^(]*\\(default: ${concurrency}\\)`), command);
        }
    });

    it("loads a command's file when it runs (render of the example stack)", () => {
        const loaded = modulesLoaded("render", "--stack", "example", "--resolve", "support.kolmisoft.com=192.0.2.200");
        assert.deepEqual(inBin(loaded), ["mor-harden.js", "render.js"]);
    });

    it("the native addons' requires in a command's file point into node_modules (used when npm built them)", () => {
        const source = readFileSync(join(BIN_DIR, "drift.js"), "utf8");
        const addons = [...source.matchAll(/require\("([^"]+\.node)"\)/g)].map((match) => resolve(BIN_DIR, match[1]));
        // esbuild resolves node_modules through a symbolic link (a worktree's) to where it is.
        const nodeModules = realpathSync(join(projectDir, "node_modules"));
        assert.deepEqual(addons.sort(), [
            join(nodeModules, "cpu-features", "build", "Release", "cpufeatures.node"),
            join(nodeModules, "ssh2", "lib", "protocol", "crypto", "build", "Release", "sshcrypto.node"),
        ]);
    });

    it("a bad stack read by a command's file is named as a stack problem (ConfigError across the files)", () => {
        const dir = mkdtempSync(join(tmpdir(), "mor-harden-cli-"));
        const stack = join(dir, "Pulumi.bad.yaml");
        writeFileSync(stack, "config:\n  mor-harden:sshd: { maxAuthTries: many }\n");
        const result = run("render", "--config", stack);
        assert.equal(result.status, 2, result.stderr);
        assert.match(result.stderr, /^\S*Pulumi\.bad\.yaml: \d+ problems? in the stack config:/);
        assert.doesNotMatch(result.stderr, /^mor-harden:/);
    });
});

describe("the target builder", () => {
    const refused: [string[], RegExp][] = [
        [["render"], /give exactly one of --stack NAME or --config FILE/],
        [["apply", "--stack", "example", "--config", "stacks/Pulumi.example.yaml"], /give exactly one of --stack NAME or --config FILE/],
        [["knock", "--client-config"], /give exactly one of --stack NAME or --config FILE/],
        [["drift"], /name at least one stack \(or --all\)/],
        [["audit"], /name at least one stack \(or --all\)/],
        [["bans"], /name at least one stack \(--stack NAME, --config FILE or --all\)/],
        [["unban", "192.0.2.9"], /name at least one stack \(--stack NAME, --config FILE or --all\)/],
        [["unban", "--stack", "example", "192.0.2.300"], /"192\.0\.2\.300" is not an IPv4 or IPv6 address/],
        [["apply", "--stack", "example", "--concurrency", "0"], /--concurrency: a whole number of hosts, at least 1/],
        [["drift", "example", "--resolve", "support.kolmisoft.com"], /--resolve support\.kolmisoft\.com: expected NAME=ADDRESS/],
        [["bans", "--stack", "example", "--host", "nope"], /nope/],
    ];
    for (const [args, message] of refused) {
        it(`refuses ${args.join(" ")} with exit 2, naming why`, () => {
            const result = run(...args);
            assert.equal(result.status, 2, result.stderr);
            assert.match(result.stderr, message);
            assert.equal(result.stdout, "");
        });
    }

    it("reports a stack drift cannot read as one host not checked (exit 2), the stack named", () => {
        const result = run("drift", "--config", "/nonexistent/Pulumi.gone.yaml", "--json");
        assert.equal(result.status, 2, result.stderr);
        const [only, ...others] = JSON.parse(result.stdout) as { stack: string; status: string; reason: string }[];
        assert.deepEqual(others, []);
        assert.equal(only.stack, "/nonexistent/Pulumi.gone.yaml");
        assert.equal(only.status, "error");
        assert.match(result.stderr, /^\[1\/1\] \/nonexistent\/Pulumi\.gone\.yaml: NOT CHECKED: /m);
    });
});

describe("the host-run core's reasons", () => {
    it("joins a config error's lines and redacts every secret line of 8 characters or more", () => {
        const secret = "-----BEGIN KEY-----\nc2VjcmV0LWtleS1ib2R5\n-----END KEY-----";
        const error = new Error(`refused: c2VjcmV0LWtleS1ib2R5 and short`);
        assert.equal(reasonOf(error, { privateKey: secret, knockKey: "short" }), "refused: [redacted] and short");
        assert.equal(reasonOf(new ConfigError("stack", ["a: bad", "b: worse"])), "stack: 2 problems in the stack config: a: bad b: worse");
    });
});
