// The report kit shared by the commands that go to hosts (apply, drift, audit, bans): how a host
// is named, and XML for JUnit. Pure: text from results.
import type { HostOfEnvironment } from "../config/environment";

/** A host in reports: its stack, and its name in an environment of several hosts. */
export function hostIdentity({ environment, host }: HostOfEnvironment): { stack: string; host?: string } {
    return { stack: environment.name, ...(environment.form === "hosts" ? { host: host.name } : {}) };
}

/** The name people read: `lab` for a single-host stack, `production/mor-2` for a host of an environment. */
export function hostLabel(result: { stack: string; host?: string }): string {
    return result.host ? `${result.stack}/${result.host}` : result.stack;
}

/** `production/mor-2 (192.0.2.12)`; the address is absent for a stack that could not be read. */
export const hostHeading = (result: { stack: string; host?: string; address?: string }) =>
    `${hostLabel(result)}${result.address ? ` (${result.address})` : ""}`;

/** Text for XML: element content and attribute values (double-quoted) alike. */
export const xmlEscape = (text: string) => text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");

/** One JUnit test case; `name`, `classname` and `body` are XML already (escape what goes into them). */
export function junitCase(classname: string, name: string, body: string, seconds?: number): string {
    return `    <testcase classname="${classname}" name="${name}"${seconds === undefined ? "" : ` time="${seconds.toFixed(3)}"`}>${body}</testcase>`;
}

/** A JUnit test suite of cases (from junitCase); `name` as plain text. */
export function junitSuite(name: string, cases: string[], counts: { failures: number; errors: number }): string {
    return `  <testsuite name="${xmlEscape(name)}" tests="${cases.length}" failures="${counts.failures}" errors="${counts.errors}">\n${cases.join("\n")}\n  </testsuite>`;
}

/** The JUnit document: suites (from junitSuite) under one testsuites element, named when `name` is given. */
export function junitDocument(suites: string[], name?: string): string {
    return `<?xml version="1.0" encoding="UTF-8"?>\n<testsuites${name ? ` name="${xmlEscape(name)}"` : ""}>\n${suites.join("\n")}\n</testsuites>\n`;
}

/** Seconds since `started` (process.hrtime.bigint()). */
export const secondsSince = (started: bigint) => Number(process.hrtime.bigint() - started) / 1e9;
