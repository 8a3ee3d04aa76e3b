// Run by `npm run build` after tsc and the templates' precompile: the CLI as a few files in
// dist/bin/: mor-harden.js (the package's bin: main.ts, commander, the options) and one file a
// command (render.js, apply.js, drift.js, ...) holding its module and every module it requires,
// ours and node_modules', the precompiled templates too. The entry requires a command's file only
// when that command runs, as main.ts does unbundled.
//
// Why (issue 23): a drift of one host spent about 170 ms loading some 250 modules, with V8's code
// cache already in use; finding, reading and wrapping each file was about 75 ms of it, gone in one
// file (compiled from the same code cache, src/cli/compile-cache.ts). One file for the whole CLI
// made `--help` slower instead (0.20 s against 0.14 s: V8 reads all of it), hence a file a command.
// esbuild only joins the JavaScript tsc wrote: tsc stays the compiler and type checker, and tests
// of single modules run dist/src/ as before. Not a V8 start-up snapshot (`node --build-snapshot`):
// Node 20 marks child_process, dgram, dns and http "not yet fully verified" in one, and ssh2's
// WebAssembly cannot be in it.
//
// Each command's file has its own copy of the modules it shares with the entry (the options, the
// exit codes, ConfigError, whose `instanceof` holds across copies): only one command runs in a
// process. Native addons (ssh2's sshcrypto.node and cpu-features' binding, built by npm when it
// may) are not inlined: their requires point from dist/bin/ back into node_modules, so ssh2 uses
// them when they are there and falls back to its JavaScript when not, as it does unbundled.
import { build, type Plugin } from "esbuild";
import { writeFileSync } from "node:fs";
import { dirname, join, relative, sep } from "node:path";
import { BIN_DIR, CLI_FILE } from "./bin";

/** The commands main.ts requires by `require("./<command>")`, each bundled into a file of its own. */
export const COMMAND_MODULES = ["render", "apply", "drift", "audit", "knock", "bans"] as const;

const fromBin = (path: string) => {
    const relativePath = relative(BIN_DIR, path).split(sep).join("/");
    return relativePath.startsWith(".") ? relativePath : `./${relativePath}`;
};

const nativeAddonsFromNodeModules: Plugin = {
    name: "native-addons-from-node-modules",
    setup(build) {
        build.onResolve({ filter: /\.node$/ }, (args) => ({ path: fromBin(join(args.resolveDir, args.path)), external: true }));
    },
};

/**
 * zod's classic API and its core re-export all of its ~50 locales as `locales` (about 290 KB): some of
 * their comments hold non-ASCII text, which made V8 hold each command's whole file as a two-byte
 * string (read 5 to 10 ms slower, hashed and compiled slower, twice the memory). mor-harden uses
 * none of them (its messages are its own, over zod's English default, which the same file sets
 * with config(en())), so in the bundle `locales` holds `en` alone.
 */
const zodEnglishOnly: Plugin = {
    name: "zod-english-only",
    setup(build) {
        const namespace = "zod-english-locales";
        build.onResolve({ filter: /^\.\.\/locales\/index\.cjs$/ }, (args) =>
            // Both zod's classic API (classic/external.cjs) and its core (core/index.cjs) re-export them.
            /[\\/]zod[\\/]v4[\\/](classic|core)[\\/]/.test(args.importer) ? { path: args.importer, namespace } : undefined,
        );
        build.onLoad({ filter: /.*/, namespace }, (args) => ({
            contents: `exports.en = require("../locales/en.cjs").default;\n`,
            resolveDir: dirname(args.path),
            loader: "js",
        }));
    },
};

/**
 * Handlebars' compiler is needed only for a template edited since the build (render/templates.ts):
 * required from node_modules then, not read at every start. Its runtime, which every render needs,
 * is in the bundle (esbuild's `external: ["handlebars"]` would leave out `handlebars/runtime` too,
 * some 15 files read and compiled at every start, about 9 ms).
 */
const handlebarsCompilerApart: Plugin = {
    name: "handlebars-compiler-apart",
    setup(build) {
        build.onResolve({ filter: /^handlebars$/ }, (args) => ({ path: args.path, external: true }));
    },
};

/** In the entry, `require("./drift")` stays a require, of dist/bin/drift.js. */
const commandsApart: Plugin = {
    name: "commands-apart",
    setup(build) {
        const commands = new RegExp(`^\\./(${COMMAND_MODULES.join("|")})$`);
        build.onResolve({ filter: commands }, (args) =>
            args.importer === join(__dirname, "main.js") ? { path: args.path + ".js", external: true } : undefined,
        );
    },
};

/** What each file of dist/bin/ holds (its inputs, as paths from the project), written beside them. */
export const BUNDLE_CONTENTS_FILE = join(BIN_DIR, "contents.json");

async function bundle(entry: string, outfile: string, plugins: Plugin[]): Promise<[string, string[]]> {
    const result = await build({
        entryPoints: [entry],
        outfile,
        bundle: true,
        platform: "node",
        target: "node20",
        format: "cjs",
        // Code as it was written, for readable stack traces: the bundle never crosses a network.
        minify: false,
        plugins: [handlebarsCompilerApart, ...plugins],
        metafile: true,
        logLevel: "warning",
    });
    return [relative(BIN_DIR, outfile), Object.keys(result.metafile.inputs).sort()];
}

export async function bundleCli(): Promise<void> {
    const contents = await Promise.all([
        bundle(join(__dirname, "main.js"), CLI_FILE, [commandsApart, nativeAddonsFromNodeModules]),
        ...COMMAND_MODULES.map((command) =>
            bundle(join(__dirname, `${command}.js`), join(BIN_DIR, `${command}.js`), [nativeAddonsFromNodeModules, zodEnglishOnly]),
        ),
    ]);
    writeFileSync(BUNDLE_CONTENTS_FILE, JSON.stringify(Object.fromEntries(contents), null, 1) + "\n");
}

if (require.main === module) {
    bundleCli().catch((error: Error) => {
        console.error(`bundle: ${error.message}`);
        process.exit(1);
    });
}
