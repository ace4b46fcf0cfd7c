// The console's end-to-end test, in Debian's Chromium driven by
// playwright-core against a real exportd (see harness.mjs): sign in, create a
// SOC 2 CSV export, see the ready notification, download it and check the
// file; a bad date range shows the field error; a viewer key sees the
// permission message; a tenant without the Compliance Pack is sent to
// Billing › Add-ons. Each step leaves a screenshot in e2e/artifacts/.
//
// Run with `make test-web` (or `node e2e/console.e2e.mjs` from web/).
import { createHash } from "node:crypto";
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import assert from "node:assert/strict";
import { chromium } from "playwright-core";
import { seeded, startExportd } from "./harness.mjs";

const artifacts = resolve(import.meta.dirname, "artifacts");
const chromiumPath = process.env.CHROMIUM ?? "/usr/bin/chromium";
const timeout = 60_000;

/** parseCSV reads RFC 4180 (LF or CRLF records, quoted fields, doubled quotes). */
export function parseCSV(text) {
  const rows = [];
  let row = [];
  let cell = "";
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') {
        cell += '"';
        i++;
      } else if (c === '"') quoted = false;
      else cell += c;
    } else if (c === '"') quoted = true;
    else if (c === ",") {
      row.push(cell);
      cell = "";
    } else if (c === "\n" || c === "\r") {
      if (c === "\r" && text[i + 1] === "\n") i++;
      row.push(cell);
      rows.push(row);
      row = [];
      cell = "";
    } else cell += c;
  }
  if (cell !== "" || row.length > 0) {
    row.push(cell);
    rows.push(row);
  }
  return rows;
}

let step = 0;
async function shot(page, name) {
  step++;
  const file = join(artifacts, `${String(step).padStart(2, "0")}-${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  console.log(`  screenshot ${file}`);
}

function log(msg) {
  console.log(`• ${msg}`);
}

async function signIn(page, url, key) {
  await page.goto(url);
  await page.getByLabel("API key").fill(key);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.getByTestId("whoami").waitFor({ timeout });
}

async function signOut(page) {
  await page.getByRole("button", { name: "Sign out" }).click();
  await page.getByLabel("API key").waitFor({ timeout });
}

async function openExportDialog(page) {
  await page.getByRole("button", { name: "Export", exact: true }).click();
  const dialog = page.getByRole("dialog", { name: "Export audit report" });
  await dialog.waitFor({ timeout });
  return dialog;
}

async function fillCustomRange(dialog, start, end) {
  await dialog.getByText("Custom", { exact: true }).click();
  await dialog.getByLabel("From").fill(start);
  await dialog.getByLabel("To (included)").fill(end);
}

async function main() {
  rmSync(artifacts, { recursive: true, force: true });
  mkdirSync(artifacts, { recursive: true });
  const env = await startExportd();
  log(`exportd at ${env.url}, tenant ${env.tenant}`);
  const userData = mkdtempSync(join(tmpdir(), "exportd-chromium-"));
  const context = await chromium.launchPersistentContext(userData, {
    executablePath: chromiumPath,
    headless: true,
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
    acceptDownloads: true,
    // Screenshots show end states, not transitions halfway.
    reducedMotion: "reduce",
    viewport: { width: 1360, height: 860 },
  });
  const failures = [];
  try {
    const page = context.pages()[0] ?? (await context.newPage());
    page.setDefaultTimeout(timeout);
    page.on("pageerror", (e) => failures.push(`page error: ${e.message}`));
    // The console makes no request to any other origin.
    page.on("request", (r) => {
      if (!r.url().startsWith(env.url) && !r.url().startsWith("blob:") && !r.url().startsWith("data:")) {
        failures.push(`request to another origin: ${r.url()}`);
      }
    });

    log("sign in with an auditor key");
    await page.goto(env.url);
    await page.getByLabel("API key").waitFor();
    await shot(page, "sign-in");
    await signIn(page, env.url, env.keys.auditor);
    const who = await page.getByTestId("whoami").innerText();
    assert.match(who, /Acme Health/);
    assert.match(who, /audrey@acme\.example/);
    assert.match(who, /auditor/);
    assert.equal(new URL(page.url()).pathname, "/settings/audit");
    await shot(page, "signed-in");

    log("a bad date range shows the server's field error next to the field");
    let dialog = await openExportDialog(page);
    await fillCustomRange(dialog, seeded.lastDay, seeded.from);
    await shot(page, "export-dialog");
    await dialog.getByRole("button", { name: "Generate report" }).click();
    const endError = dialog.getByTestId("error-end_date");
    await endError.waitFor();
    assert.match(await endError.innerText(), /start/i);
    assert.equal(await dialog.getByLabel("To (included)").getAttribute("aria-invalid"), "true");
    await shot(page, "bad-date-range");

    log("create a SOC 2 CSV export of January 2026");
    await fillCustomRange(dialog, seeded.from, seeded.lastDay);
    await dialog.getByText("SOC 2", { exact: true }).click();
    await dialog.getByText("CSV", { exact: true }).click();
    assert.match(await dialog.locator(".hint").first().innerText(), /UTC.*end day included/);
    await dialog.getByRole("button", { name: "Generate report" }).click();
    await dialog.waitFor({ state: "detached" });
    const row = page.getByTestId("export-row").first();
    await row.waitFor();
    const jobId = await row.getAttribute("data-job-id");
    assert.match(jobId, /^job_/);
    assert.match(await row.innerText(), /SOC 2[\s\S]*1 Jan 2026 – 31 Jan 2026[\s\S]*CSV/);
    await shot(page, "export-queued");

    log("the ready notification appears, in a toast and the document title");
    const toast = page.getByTestId("toast").filter({ hasText: "Your report is ready" });
    await toast.waitFor();
    assert.match(await page.title(), /Report ready/);
    await page.locator(`[data-job-id="${jobId}"][data-status="COMPLETED"]`).waitFor();
    await shot(page, "export-ready");

    log("download from the notification");
    const [download] = await Promise.all([page.waitForEvent("download"), toast.getByRole("button", { name: "Download" }).click()]);
    const file = join(artifacts, download.suggestedFilename() || `${jobId}.csv`);
    await download.saveAs(file);
    const started = page.getByTestId("toast").filter({ hasText: "Download started" });
    await started.waitFor();
    const via = /streamed/.test(await started.innerText()) ? "DownloadService.Download stream (links not offered by this server)" : "a download link";
    log(`downloaded ${file} via ${via}`);
    assert.match(download.suggestedFilename(), /\.csv$/);
    await shot(page, "downloaded");

    log("the file parses and has the expected counts");
    const bytes = readFileSync(file);
    const job = await (
      await fetch(`${env.url}/v1/audit/exports/${jobId}`, { headers: { "X-API-Key": env.keys.auditor } })
    ).json();
    assert.equal(createHash("sha256").update(bytes).digest("hex"), job.sha256, "downloaded bytes match the job's SHA-256");
    assert.equal(bytes.length, Number(job.size_bytes));
    // The CSV begins with a UTF-8 byte-order mark, for spreadsheet programs.
    assert.equal(bytes.toString("utf8").charCodeAt(0), 0xfeff, "the CSV begins with a byte-order mark");
    const [header, ...records] = parseCSV(bytes.toString("utf8").slice(1));
    const col = (name) => {
      const i = header.indexOf(name);
      assert.ok(i >= 0, `column ${name} in ${header.join(",")}`);
      return i;
    };
    const kind = col("record_type");
    const count = (t) => records.filter((r) => r[kind] === t).length;
    const summary = records.filter((r) => r[kind] === "summary");
    assert.equal(summary.length, 1);
    assert.equal(summary[0][col("report_type")], "soc2");
    assert.equal(summary[0][col("period_start")], "2026-01-01T00:00:00Z");
    assert.equal(summary[0][col("period_end")], "2026-01-31T23:59:59Z");
    const audit = Number(summary[0][col("audit_entries")]);
    const access = Number(summary[0][col("access_entries")]);
    assert.equal(audit, seeded.events, "every seeded event of January is an audit entry");
    assert.equal(count("audit_entry"), audit);
    assert.equal(count("access_entry"), access);
    assert.ok(access > 0 && access < audit, `access entries ${access}`);
    const controls = records.filter((r) => r[kind] === "control").map((r) => r[col("control_id")]);
    for (const id of ["CC1.1", "CC2.1", "CC6.1", "CC6.2"]) assert.ok(controls.includes(id), `control ${id} in ${controls}`);
    for (const r of records) assert.equal(r.length, header.length, "every row has every column");
    log(`report: ${audit} audit entries, ${access} access entries, ${records.length} records`);

    log("download history");
    await row.getByRole("button", { name: "History" }).click();
    await page.locator(`#history-${jobId}`).waitFor();
    const history = page.locator(`#history-${jobId}`);
    await history.locator("table, p:not(:has-text('Loading'))").first().waitFor();
    if (await history.locator("table").count()) {
      // DownloadService.ListDownloads is served: our download is in it.
      const protocol = via === "a download link" ? "link" : "connect";
      const entry = history.locator("tbody tr").filter({ hasText: protocol });
      assert.ok((await entry.count()) >= 1, `a ${protocol} download in the history`);
      assert.match(await entry.first().innerText(), /audrey@acme\.example[\s\S]*completed/);
    } else {
      assert.match(await history.innerText(), /does not offer this feature yet/);
      log("ListDownloads is not served by this exportd: the history says so");
    }
    await shot(page, "download-history");

    log("a viewer key sees the permission message");
    await signOut(page);
    await signIn(page, env.url, env.keys.viewer);
    assert.match(await page.getByTestId("whoami").innerText(), /viewer/);
    // Keyboard only: focus Export, Enter opens the dialog, Enter on the
    // focused submit button sends it.
    await page.getByRole("button", { name: "Export", exact: true }).focus();
    await page.keyboard.press("Enter");
    dialog = page.getByRole("dialog", { name: "Export audit report" });
    await dialog.waitFor();
    await dialog.getByRole("button", { name: "Generate report" }).focus();
    await page.keyboard.press("Enter");
    const denied = dialog.getByTestId("dialog-error");
    await denied.waitFor();
    const deniedText = await denied.innerText();
    assert.match(deniedText, /Permission needed/);
    assert.match(deniedText, /tenant\.audit\.export/);
    assert.match(deniedText, /ask a tenant admin/);
    await shot(page, "viewer-denied");
    await page.keyboard.press("Escape");
    await dialog.waitFor({ state: "detached" });

    log("without the Compliance Pack, the dialog links to Billing › Add-ons");
    execFileSync(join(env.dataDir, "..", "exportd"), ["tenant", "addon", "disable", "compliance-pack", "--tenant", env.tenant, "--data-dir", env.dataDir]);
    await signOut(page);
    await signIn(page, env.url, env.keys.admin);
    dialog = await openExportDialog(page);
    await dialog.getByRole("button", { name: "Generate report" }).click();
    const pack = dialog.getByTestId("dialog-error");
    await pack.waitFor();
    assert.match(await pack.innerText(), /Compliance Pack is not enabled/);
    await shot(page, "no-compliance-pack");
    await pack.getByRole("link", { name: /Billing › Add-ons/ }).click();
    await page.getByRole("heading", { name: "Add-ons" }).waitFor();
    assert.equal(new URL(page.url()).pathname, "/settings/billing/add-ons");
    assert.match(await page.getByTestId("addon-state").innerText(), /Not enabled/);
    await shot(page, "add-ons");
    if (await page.getByText("does not offer this feature yet").count()) {
      log("TenantService is not served by this exportd: the page says so and shows WhoAmI's add-ons");
    } else {
      log("the admin enables the Compliance Pack again, and exports work");
      await page.getByRole("switch").click();
      await page.getByTestId("addon-state").filter({ hasText: /^Enabled$/ }).waitFor();
      await shot(page, "add-on-enabled");
      await page.getByRole("link", { name: "Audit" }).click();
      dialog = await openExportDialog(page);
      await dialog.getByRole("button", { name: "Generate report" }).click();
      await dialog.waitFor({ state: "detached" });
      // The list refreshes after the dialog closes: wait for the new row.
      await page.getByTestId("export-row").nth(1).waitFor();
      assert.equal(await page.getByTestId("export-row").count(), 2);
    }

    log("the console answers with its security headers");
    const res = await fetch(`${env.url}/settings/audit`);
    assert.match(res.headers.get("content-security-policy") ?? "", /default-src 'self'/);

    assert.deepEqual(failures, []);
    writeFileSync(join(artifacts, "result.txt"), `passed; download via ${via}\n`);
    console.log("\nconsole e2e: all steps passed");
  } catch (e) {
    const page = context.pages()[0];
    if (page) await page.screenshot({ path: join(artifacts, "failure.png"), fullPage: true }).catch(() => {});
    writeFileSync(join(artifacts, "exportd.log"), env.log());
    if (failures.length) console.error(failures.join("\n"));
    throw e;
  } finally {
    await context.close();
    rmSync(userData, { recursive: true, force: true });
    await env.stop();
  }
}

await main();
