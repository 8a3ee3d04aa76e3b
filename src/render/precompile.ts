// Run by `npm run build` after tsc: precompiles every template under templates/ into
// dist/src/render/templates.compiled.js (see src/render/templates.ts for why), each with the
// digest of its source so that a template edited after the build is compiled at run time instead.
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join, relative, sep } from "node:path";
import Handlebars from "handlebars";
import { COMPILE_OPTIONS, findTemplatesDir, PRECOMPILED_FILE, sourceDigest } from "./templates";

function templateFiles(dir: string): string[] {
    return readdirSync(dir, { withFileTypes: true }).flatMap((entry) =>
        entry.isDirectory() ? templateFiles(join(dir, entry.name)) : entry.name.endsWith(".hbs") ? [join(dir, entry.name)] : [],
    );
}

export function precompileTemplates(dir = findTemplatesDir()): string {
    const entries = templateFiles(dir)
        .sort()
        .map((path) => {
            const source = readFileSync(path, "utf8");
            const name = relative(dir, path).split(sep).join("/");
            return `${JSON.stringify(name)}: { sha256: ${JSON.stringify(sourceDigest(source))}, spec: ${Handlebars.precompile(source, COMPILE_OPTIONS)} }`;
        });
    return `// Written by src/render/precompile.ts at build time: do not edit.\nmodule.exports = {\n${entries.join(",\n")}\n};\n`;
}

if (require.main === module) writeFileSync(PRECOMPILED_FILE, precompileTemplates());
