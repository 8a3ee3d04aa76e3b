// Handlebars templates from templates/, compiled with noEscape (configs are not HTML: every value
// was validated by the schema instead) and strict (a missing value is an error, not ""). The build
// precompiles them (src/render/precompile.ts): compiling all of them at run time took 100-250 ms
// of every drift and apply on the CI machine, and loading Handlebars' compiler as much again. A
// template whose source no longer matches its precompiled digest (edited since the build) is
// compiled here, on first use, with the same options.
import { createHash } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import type Handlebars from "handlebars";
import HandlebarsRuntime from "handlebars/runtime";

/** The project's templates/ directory (found from the compiled file, wherever dist/ is). */
export function findTemplatesDir(): string {
    for (let dir = __dirname; dirname(dir) !== dir; dir = dirname(dir)) {
        if (existsSync(join(dir, "templates")) && existsSync(join(dir, "package.json"))) return join(dir, "templates");
    }
    throw new Error(`templates/ not found above ${__dirname}`);
}

/** The options every template is compiled with, at build time and here. */
export const COMPILE_OPTIONS = { noEscape: true, strict: true } as const;

/** What the build writes: template name -> the digest of its source and its precompiled form. */
/** Handlebars.precompile()'s output, evaluated (the type is global in handlebars' declarations). */
type TemplateSpecification = Parameters<typeof HandlebarsRuntime.template>[0];

export type PrecompiledTemplates = Record<string, { sha256: string; spec: TemplateSpecification }>;

/** Where the build writes the precompiled templates (next to this file in dist/). */
export const PRECOMPILED_FILE = join(__dirname, "templates.compiled.js");

export const sourceDigest = (source: string) => createHash("sha256").update(source).digest("hex");

function withHelpers<T extends typeof Handlebars>(environment: T): T {
    environment.registerHelper("join", (items: unknown[], separator: unknown) => items.join(typeof separator === "string" ? separator : " "));
    environment.registerHelper("eq", (a: unknown, b: unknown) => a === b);
    return environment;
}

const runtime = withHelpers(HandlebarsRuntime.create());
let compiler: typeof Handlebars | undefined;
let precompiled: PrecompiledTemplates | undefined;
const compiled = new Map<string, Handlebars.TemplateDelegate>();
let templatesDir: string | undefined;

function loadPrecompiled(): PrecompiledTemplates {
    // A literal path, so that the CLI's bundle (src/cli/bundle.ts) holds the precompiled templates
    // too. Absent when running from sources that were never built with the precompile step.
    try {
        return require("./templates.compiled.js") as PrecompiledTemplates;
    } catch (error) {
        if ((error as NodeJS.ErrnoException).code === "MODULE_NOT_FOUND" && !existsSync(PRECOMPILED_FILE)) return {};
        throw error;
    }
}

/** The template as Handlebars would compile it now: precompiled when its source is unchanged. */
export function templateOf(name: string, source: string, usePrecompiled = true): Handlebars.TemplateDelegate {
    precompiled ??= loadPrecompiled();
    const entry = usePrecompiled ? precompiled[name] : undefined;
    if (entry && entry.sha256 === sourceDigest(source)) return runtime.template(entry.spec);
    compiler ??= withHelpers((require("handlebars") as typeof Handlebars).create());
    return compiler.compile(source, COMPILE_OPTIONS);
}

/** Renders templates/<name> (e.g. "sshd/hardening.conf.hbs") with `data`. */
export function renderTemplate(name: string, data: object): string {
    let template = compiled.get(name);
    if (!template) {
        templatesDir ??= findTemplatesDir();
        template = templateOf(name, readFileSync(join(templatesDir, name), "utf8"));
        compiled.set(name, template);
    }
    return template(data);
}
