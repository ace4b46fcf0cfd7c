// harness starts a real exportd for the console's browser tests: it builds
// the binary, creates a tenant with the Compliance Pack, an admin, an auditor
// and a viewer key and demo data with the admin CLI, and serves on an
// ephemeral loopback port with a fresh data directory.
import { execFileSync, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

const repo = resolve(import.meta.dirname, "../..");

/** Seeded period: every demo event lies in January 2026 (UTC). */
export const seeded = { from: "2026-01-01", to: "2026-02-01", events: 2000, lastDay: "2026-01-31" };

/**
 * startExportd returns { url, keys: {admin, auditor, viewer}, tenant,
 * dataDir, stop }.
 */
export async function startExportd() {
  const dir = mkdtempSync(join(tmpdir(), "exportd-e2e-"));
  const bin = join(dir, "exportd");
  execFileSync("go", ["build", "-o", bin, "./cmd/exportd"], { cwd: repo, stdio: "inherit", env: { ...process.env, CGO_ENABLED: "0" } });
  const data = join(dir, "data");
  const cli = (...args) => execFileSync(bin, [...args, "--data-dir", data], { encoding: "utf8" }).trim();

  const tenant = cli("tenant", "create", "--name", "Acme Health", "--compliance-pack");
  const keys = {
    admin: cli("apikey", "create", "--tenant", tenant, "--role", "admin", "--principal", "ada@acme.example"),
    auditor: cli("apikey", "create", "--tenant", tenant, "--role", "auditor", "--principal", "audrey@acme.example"),
    viewer: cli("apikey", "create", "--tenant", tenant, "--role", "viewer", "--principal", "victor@acme.example"),
  };
  cli("seed-demo", "--tenant", tenant, "--events", String(seeded.events), "--from", seeded.from, "--to", seeded.to);

  const proc = spawn(bin, ["serve", "--addr", "127.0.0.1:0", "--data-dir", data, "--workers", "2"], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  let log = "";
  const url = await new Promise((resolveUrl, reject) => {
    const timer = setTimeout(() => reject(new Error(`exportd did not start:\n${log}`)), 60_000);
    const onData = (b) => {
      log += b.toString();
      const m = /msg="exportd listening" addr=(\S+)/.exec(log);
      if (m) {
        clearTimeout(timer);
        resolveUrl(`http://${m[1]}`);
      }
    };
    proc.stdout.on("data", onData);
    proc.stderr.on("data", onData);
    proc.on("exit", (code) => reject(new Error(`exportd exited with ${code}:\n${log}`)));
  });
  proc.stdout.removeAllListeners("data");
  proc.stderr.removeAllListeners("data");
  proc.stderr.on("data", (b) => (log += b.toString()));
  proc.removeAllListeners("exit");

  return {
    url,
    tenant,
    keys,
    dataDir: data,
    log: () => log,
    stop: async () => {
      if (proc.exitCode === null) {
        const done = new Promise((r) => proc.once("exit", r));
        proc.kill("SIGTERM");
        await done;
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
