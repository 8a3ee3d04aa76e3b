// The layers, enforced: pure code (config, render, compose and the concern folders) imports no
// effects, and no module of src/ imports itself round a circle. Imports read with TypeScript's own
// parser (ts.preProcessFile: import, export ... from, require, import()).
import assert from "node:assert/strict";
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { describe, it } from "node:test";
import ts from "typescript";

const projectDir = join(__dirname, "..", "..", "..");
const srcDir = join(projectDir, "src");

/**
 * Folders of src/ that touch hosts, processes or Pulumi. Every other folder is pure, a new concern
 * folder included: it may import only other pure folders (and packages, node's own modules).
 * audit/ is here for audit/check.ts (it connects); its evaluators are pure but live beside it.
 */
export const EFFECT_FOLDERS = ["apply", "ssh", "provider", "pulumi", "cli", "lab", "drift", "audit"];
/** What pure code must never import (the brief's list; audit/ is an effects folder too). */
const FORBIDDEN_FOR_PURE = EFFECT_FOLDERS;

function sourceFiles(dir: string): string[] {
    return readdirSync(dir).flatMap((name) => {
        const path = join(dir, name);
        if (statSync(path).isDirectory()) return sourceFiles(path);
        return name.endsWith(".ts") && !name.endsWith(".d.ts") ? [path] : [];
    });
}

/**
 * Modules the build writes beside the compiled code (npm run build: src/render/precompile.ts), so no
 * source of them exists in src/. They import nothing of src/: each is a leaf of the graph.
 */
const BUILD_OUTPUTS = new Set([join(srcDir, "render", "templates.compiled.js")]);

/** The module of src/ an import names, or undefined for a package, node's own module or a build output. */
function resolveImport(from: string, specifier: string): string | undefined {
    if (!specifier.startsWith(".")) return undefined;
    const base = resolve(dirname(from), specifier);
    if (BUILD_OUTPUTS.has(base)) return undefined;
    for (const candidate of [`${base}.ts`, join(base, "index.ts"), base]) {
        if (existsSync(candidate) && statSync(candidate).isFile()) return candidate;
    }
    throw new Error(`${relative(projectDir, from)}: import ${JSON.stringify(specifier)} names no file`);
}

/** Every module of src/ with the modules of src/ it imports (type-only imports included: they still tie the layers). */
export function importGraph(dir: string = srcDir): Map<string, string[]> {
    const graph = new Map<string, string[]>();
    for (const file of sourceFiles(dir)) {
        const info = ts.preProcessFile(readFileSync(file, "utf8"), true, true);
        const targets = info.importedFiles.map((imported) => resolveImport(file, imported.fileName)).filter((target): target is string => target !== undefined);
        graph.set(file, [...new Set(targets)]);
    }
    return graph;
}

/** The top folder of src/ a module lives in ("" for src/index.ts). */
const folderOf = (file: string) => {
    const parts = relative(srcDir, file).split("/");
    return parts.length > 1 ? parts[0] : "";
};

const isPure = (file: string) => folderOf(file) !== "" && !EFFECT_FOLDERS.includes(folderOf(file));

export function layerViolations(graph: Map<string, string[]>): string[] {
    const violations: string[] = [];
    for (const [file, targets] of graph) {
        if (!isPure(file)) continue;
        for (const target of targets) {
            if (FORBIDDEN_FOR_PURE.includes(folderOf(target))) violations.push(`${relative(srcDir, file)} imports ${relative(srcDir, target)}`);
        }
    }
    return violations;
}

/** Every import circle (Tarjan's strongly connected components), each shown as one cycle through it. */
export function importCycles(graph: Map<string, string[]>): string[] {
    let counter = 0;
    const index = new Map<string, number>();
    const low = new Map<string, number>();
    const stack: string[] = [];
    const onStack = new Set<string>();
    const components: string[][] = [];
    const visit = (node: string) => {
        index.set(node, counter);
        low.set(node, counter++);
        stack.push(node);
        onStack.add(node);
        for (const next of graph.get(node) ?? []) {
            if (!index.has(next)) {
                visit(next);
                low.set(node, Math.min(low.get(node)!, low.get(next)!));
            } else if (onStack.has(next)) low.set(node, Math.min(low.get(node)!, index.get(next)!));
        }
        if (low.get(node) === index.get(node)) {
            const component: string[] = [];
            let member: string;
            do {
                member = stack.pop()!;
                onStack.delete(member);
                component.push(member);
            } while (member !== node);
            if (component.length > 1 || (graph.get(node) ?? []).includes(node)) components.push(component);
        }
    };
    for (const node of graph.keys()) if (!index.has(node)) visit(node);
    return components.map((component) => {
        // One path round the circle: from its first member, breadth first, back to it.
        const members = new Set(component);
        const start = component.sort()[0];
        const previous = new Map<string, string>();
        const queue = [start];
        let last: string | undefined;
        while (queue.length > 0 && last === undefined) {
            const node = queue.shift()!;
            for (const next of graph.get(node) ?? []) {
                if (!members.has(next)) continue;
                if (next === start) {
                    last = node;
                    break;
                }
                if (!previous.has(next)) {
                    previous.set(next, node);
                    queue.push(next);
                }
            }
        }
        const path = [start];
        for (let node = last!; node !== start; node = previous.get(node)!) path.splice(1, 0, node);
        return [...path, start].map((file) => relative(srcDir, file)).join(" -> ");
    });
}

describe("the layers of src/", () => {
    const graph = importGraph();

    it("reads the imports of every module (the parser finds what the tree holds)", () => {
        assert.ok(graph.size > 50, `${graph.size} modules`);
        const engine = graph.get(join(srcDir, "apply", "engine.ts"));
        assert.ok(engine && engine.length > 0, "apply/engine.ts imports modules of src/");
    });

    it("pure code (config, render, compose, the concern folders) imports no effects (apply, ssh, provider, pulumi, cli, lab, drift, audit)", () => {
        assert.deepEqual(layerViolations(graph), []);
    });

    it("has no import circle", () => {
        assert.deepEqual(importCycles(graph), []);
    });

    it("finds a violation and a circle when there are some (the checks can fail)", () => {
        const a = join(srcDir, "render", "a.ts");
        const b = join(srcDir, "apply", "b.ts");
        const c = join(srcDir, "lab", "c.ts");
        const fake = new Map([
            [a, [b]],
            [b, [c]],
            [c, [b]],
        ]);
        assert.deepEqual(layerViolations(fake), ["render/a.ts imports apply/b.ts"]);
        assert.deepEqual(importCycles(fake), ["apply/b.ts -> lab/c.ts -> apply/b.ts"]);
    });
});
