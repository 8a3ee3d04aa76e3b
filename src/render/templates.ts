// Handlebars templates from templates/, compiled once with noEscape (configs are not HTML: every
// value was validated by the schema instead) and strict (a missing value is an error, not "").
import { existsSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import Handlebars from "handlebars";

/** The project's templates/ directory (found from the compiled file, wherever dist/ is). */
export function findTemplatesDir(): string {
    for (let dir = __dirname; dirname(dir) !== dir; dir = dirname(dir)) {
        if (existsSync(join(dir, "templates")) && existsSync(join(dir, "package.json"))) return join(dir, "templates");
    }
    throw new Error(`templates/ not found above ${__dirname}`);
}

const handlebars = Handlebars.create();
handlebars.registerHelper("join", (items: unknown[], separator: unknown) => items.join(typeof separator === "string" ? separator : " "));
handlebars.registerHelper("eq", (a: unknown, b: unknown) => a === b);
const compiled = new Map<string, Handlebars.TemplateDelegate>();
let templatesDir: string | undefined;

/** Renders templates/<name> (e.g. "sshd/hardening.conf.hbs") with `data`. */
export function renderTemplate(name: string, data: object): string {
    let template = compiled.get(name);
    if (!template) {
        templatesDir ??= findTemplatesDir();
        template = handlebars.compile(readFileSync(join(templatesDir, name), "utf8"), { noEscape: true, strict: true });
        compiled.set(name, template);
    }
    return template(data);
}
