// The jails' filters judged by fail2ban-regex: upstream's annotated samples shipped in Debian's
// fail2ban package, and each filter's own annotated sample beside its template.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { effectiveJails, filterName, renderFail2ban, type EffectiveJail } from "../../src/fail2ban/render";
import { jailNames, type JailName } from "../../src/fail2ban/schema";
import { findTemplatesDir } from "../../src/render/templates";
import {
    bannedHosts,
    describeProblems,
    evaluateConditions,
    fail2banConfigWith,
    hitsPerRegex,
    judge,
    parseSamples,
    runFilter,
    UPSTREAM_SAMPLES,
    type LineVerdict,
    type SampleFile,
    type SampleLine,
} from "../helpers/fail2ban-regex";
import { minimalConfig, renderInputFor } from "../helpers/fixtures";
import { CRAFT_ATOMS, CRAFT_SIZE, craftLine, craftTemplates } from "../../bench/fail2ban-filters";

const samplePath = (jail: JailName) => join(findTemplatesDir(), "fail2ban", "filter.d", `${jail}.sample.log`);
/** Each filter's injection corpus: lines an attacker can cause, each saying what must and must not match. */
const corpusPath = (jail: JailName) => join(findTemplatesDir(), "fail2ban", "filter.d", `${jail}.injection.log`);
const ownLines = (path: string) => parseSamples(readFileSync(path, "utf8")).sections.flatMap((section) => section.lines);

/**
 * Upstream's sample lines where our filter deliberately differs (a match upstream expects is
 * itself an injection): our corpora hold them, marked "upstream": "differs", with why.
 */
function deliberateDifferences(): Map<string, SampleLine> {
    const lines = jailNames.flatMap((jail) => ownLines(corpusPath(jail)));
    return new Map(lines.filter((line) => line.expect.upstream === "differs").map((line) => [line.text, line]));
}
const ourExpectation = (line: SampleLine): SampleLine => {
    const ours = deliberateDifferences().get(line.text);
    return ours ? { ...line, expect: { ...line.expect, match: ours.expect.match, host: ours.expect.host } } : line;
};

let config: { dir: string; cleanup: () => void };
let effective: EffectiveJail[];

before(async () => {
    // The minimal stack trusts the workstation 198.51.100.10: it is in every jail's ignoreip.
    const input = await renderInputFor(minimalConfig());
    config = fail2banConfigWith(renderFail2ban(input).artifacts);
    effective = effectiveJails(input);
});
after(() => config.cleanup());

/**
 * Upstream's samples as its own test reads them (samplestestcase.py): each section with each of
 * its option sets, feeding the filter only the lines whose constraint holds for that set, with
 * our filter in place of the stock one.
 */
function judgeUpstream(
    sample: SampleFile,
    stockName: string,
    filter: string,
    expectation: (line: SampleLine) => SampleLine = (line) => line,
): { verdicts: LineVerdict[]; runs: number } {
    const verdicts: LineVerdict[] = [];
    let runs = 0;
    for (const section of sample.sections) {
        const allowed = evaluateConditions(section.optionSets.map((opts) => ({ expression: String(opts["test.condition"] ?? "True"), name: stockName, opts })));
        for (const opts of section.optionSets.filter((_, i) => allowed[i])) {
            // fail2ban-regex reads journal entries from the journal, not from a file.
            if (opts.logtype === "journal") continue;
            const constrained = section.lines.filter((line) => line.expect.constraint);
            const holds = evaluateConditions(constrained.map((line) => ({ expression: line.expect.constraint!, name: stockName, opts })));
            const lines = section.lines
                .filter((line) => !line.expect.constraint || holds[constrained.indexOf(line)])
                .map(ourExpectation)
                .map(expectation);
            // A section without a mode means the stock default (normal); ours defaults to aggressive.
            const args = Object.entries({ mode: "normal", ...opts }).filter(([key]) => !key.startsWith("test."));
            const failures = runFilter(
                config.dir,
                `${filter}${args.length ? `[${args.map(([key, value]) => `${key}=${value}`).join(", ")}]` : ""}`,
                lines.map((line) => line.text),
            );
            verdicts.push(...judge(lines, failures));
            runs++;
        }
    }
    return { verdicts, runs };
}

const matched = (verdicts: LineVerdict[]) => verdicts.filter((verdict) => verdict.line.expect.match && !verdict.problem).length;

describe("fail2ban filters judged by fail2ban-regex on upstream's samples", () => {
    it("ssh-iptables reads upstream's sshd samples as the stock filter does, in each mode they test", () => {
        const sample = parseSamples(readFileSync(join(UPSTREAM_SAMPLES, "sshd"), "utf8"));
        // Upstream's sections name the filter's mode (normal, ddos, extra, aggressive); ours runs in
        // aggressive mode on the hosts (the renderer's test checks that), which is all three at once.
        const { verdicts, runs } = judgeUpstream(sample, "sshd", filterName("ssh-iptables"));
        assert.equal(describeProblems("sshd", verdicts), "");
        assert.ok(runs >= 8, `only ${runs} option sets read`);
        assert.ok(matched(verdicts) >= 100, `only ${matched(verdicts)} failures checked`);
    });

    it("asterisk-iptables matches upstream's asterisk samples, ports and IPv6 included", () => {
        const sample = parseSamples(readFileSync(join(UPSTREAM_SAMPLES, "asterisk"), "utf8"));
        const { verdicts } = judgeUpstream(sample, "asterisk", filterName("asterisk-iptables"));
        assert.equal(describeProblems("asterisk", verdicts), "");
        assert.ok(matched(verdicts) >= 30, `only ${matched(verdicts)} failures checked`);
    });

    it("asterisk-manager matches upstream's AMI failures and none of its SIP or IAX2 lines", () => {
        const sample = parseSamples(readFileSync(join(UPSTREAM_SAMPLES, "asterisk"), "utf8"));
        const isAmi = (text: string) => /manager\.c|Service="AMI"/.test(text);
        const amiOnly = (line: SampleLine): SampleLine => ({ ...line, expect: { ...line.expect, match: line.expect.match === true && isAmi(line.text) } });
        const { verdicts } = judgeUpstream(sample, "asterisk", filterName("asterisk-manager"), amiOnly);
        assert.equal(describeProblems("asterisk", verdicts), "");
        assert.ok(matched(verdicts) >= 3, `only ${matched(verdicts)} AMI failures checked`);
    });
});

describe("fail2ban filters judged by fail2ban-regex on their own samples", () => {
    for (const jail of jailNames) {
        it(`${jail}: every annotated line, every pattern used, the right hosts banned`, () => {
            const sample = parseSamples(readFileSync(samplePath(jail), "utf8"));
            assert.equal(sample.sections.length, 1);
            const lines = sample.sections[0].lines;
            assert.deepEqual(
                lines.filter((line) => !line.expect.source).map((line) => line.lineNo),
                [],
                "every sample line names its source (`# source:` before it)",
            );
            assert.ok(
                lines.some((line) => line.expect.match) && lines.some((line) => !line.expect.match),
                "a sample needs lines that must match and lines that must not",
            );
            const failures = runFilter(
                config.dir,
                filterName(jail),
                lines.map((line) => line.text),
            );
            assert.equal(describeProblems(`${jail}.sample.log`, judge(lines, failures)), "");
            const hits = hitsPerRegex(
                config.dir,
                filterName(jail),
                lines.map((line) => line.text),
            );
            assert.ok(hits.length > 0 && hits.every((count) => count > 0), `a pattern with no sample: hits per pattern ${JSON.stringify(hits)}`);
            // At the jail's thresholds, and never a source in its ignoreip (the trusted ones).
            const { maxretry, findtime, ignoreip } = effective.find((candidate) => candidate.name === jail)!;
            assert.deepEqual(bannedHosts(failures, maxretry, findtime, ignoreip), sample.bans, `bans at ${maxretry} in ${findtime}s`);
        });
    }
});

describe("fail2ban filters judged by fail2ban-regex on their injection corpora", () => {
    for (const jail of jailNames) {
        it(`${jail}: every crafted line as its corpus says (the victim never, the attacker or no one)`, () => {
            const lines = ownLines(corpusPath(jail));
            assert.deepEqual(
                lines.filter((line) => !line.expect.source).map((line) => line.lineNo),
                [],
                "every corpus line names its source (`# source:` before it)",
            );
            assert.ok(
                lines.some((line) => line.expect.match) && lines.some((line) => !line.expect.match),
                "a corpus needs lines that must match and lines that must not",
            );
            const failures = runFilter(
                config.dir,
                filterName(jail),
                lines.map((line) => line.text),
            );
            assert.equal(describeProblems(`${jail}.injection.log`, judge(lines, failures)), "");
        });
    }

    // A line counts in another jail only where its annotation says so ("also": [jails]), with the
    // same host: a SIP line never counts as an AMI failure, an API refusal may count in mor_ddos.
    for (const jail of jailNames) {
        it(`${jail} reads none of the other jails' samples and corpora, unless a line says it also counts there`, () => {
            const lines = jailNames
                .filter((other) => other !== jail)
                .flatMap((other) => [...ownLines(samplePath(other)), ...ownLines(corpusPath(other))])
                .map((line): SampleLine => {
                    const also = Array.isArray(line.expect.also) && line.expect.also.includes(jail);
                    return { ...line, expect: { ...line.expect, match: also } };
                });
            const failures = runFilter(
                config.dir,
                filterName(jail),
                lines.map((line) => line.text),
            );
            assert.equal(describeProblems(`${jail} over the other jails' lines`, judge(lines, failures)), "");
            assert.ok(lines.length >= 100, `only ${lines.length} lines of other jails read`);
        });
    }
});

describe("fail2ban as it reads the rendered configuration", () => {
    // A host name in a log line is the writer's choice: fail2ban would ban every address of it.
    it("every jail is started with usedns = no (fail2ban-client -d)", () => {
        const dump = execFileSync("fail2ban-client", ["-c", config.dir, "-d"], { encoding: "utf8", maxBuffer: 64 * 1024 * 1024 });
        const started = [...dump.matchAll(/^\['add', '([^']+)'/gm)].map((match) => match[1]);
        const usedns = new Map([...dump.matchAll(/^\['set', '([^']+)', 'usedns', '([^']+)'\]/gm)].map((match) => [match[1], match[2]]));
        assert.ok(
            jailNames.every((jail) => started.includes(jail)),
            `jails started: ${started.join(", ")}`,
        );
        assert.deepEqual(
            started.filter((jail) => usedns.get(jail) !== "no"),
            [],
            "jails that resolve names",
        );
    });

    it("a stack's own failregex replaces each jail's patterns, and only them (fail2ban-client -d)", async () => {
        const pattern = "^mor-harden override <HOST>$";
        const jails = Object.fromEntries(jailNames.map((jail) => [jail, { failregex: [pattern] }]));
        const own = fail2banConfigWith(renderFail2ban(await renderInputFor(minimalConfig({ fail2ban: { jails } }))).artifacts);
        try {
            const dump = execFileSync("fail2ban-client", ["-c", own.dir, "-d"], { encoding: "utf8", maxBuffer: 64 * 1024 * 1024 });
            const regexes = (jail: string) =>
                dump
                    .split("\n")
                    .filter((line) => line.startsWith(`['multi-set', '${jail}', 'addfailregex'`) || line.startsWith(`['set', '${jail}', 'addfailregex'`));
            assert.deepEqual(
                jailNames.filter((jail) => regexes(jail).join("\n") !== `['set', '${jail}', 'addfailregex', '${pattern}']`),
                [],
                "jails whose patterns are not exactly the stack's",
            );
        } finally {
            own.cleanup();
        }
    });
});

// The cost of crafted lines is measured in the bench (npm run bench -- filters), not here; this
// checks that what it measures is what the target speaks of: every jail's lines, 8 KB at most,
// a normal line of the same size beside each crafted one.
describe("the bench's crafted lines", () => {
    it("every jail has templates, each filled to at most 8 KB and within 5% of its normal line", () => {
        assert.deepEqual(
            jailNames.filter((jail) => !(craftTemplates[jail]?.length > 0)),
            [],
            "jails without crafted lines",
        );
        const sizes = jailNames.flatMap((jail) =>
            craftTemplates[jail].map((template) => ({
                normal: Buffer.byteLength(craftLine(template, "a")),
                crafted: CRAFT_ATOMS.map((atom) => Buffer.byteLength(craftLine(template, atom))),
            })),
        );
        assert.deepEqual(
            sizes.filter(({ normal, crafted }) => [normal, ...crafted].some((size) => size > CRAFT_SIZE || size < normal * 0.95)),
            [],
        );
    });
});
