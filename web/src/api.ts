// The API clients: the generated service descriptors over Connect-Web, with
// the signed-in API key in the X-API-Key header of every call.
import { Code, ConnectError, createClient, type Client, type Interceptor } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-web";
import { DownloadService, ExportService } from "@gen/audit/v1/export_pb.js";
import { TenantService } from "@gen/audit/v1/tenant_pb.js";

/** Clients are the three services, bound to one key. */
export interface Clients {
  exports: Client<typeof ExportService>;
  downloads: Client<typeof DownloadService>;
  tenant: Client<typeof TenantService>;
}

const keyStorage = "exportd.apiKey";

/** storedKey returns the key of this tab's session, if signed in. */
export function storedKey(): string | null {
  return sessionStorage.getItem(keyStorage);
}

/** storeKey keeps the key for this tab only (sessionStorage), or forgets it. */
export function storeKey(key: string | null): void {
  if (key === null) sessionStorage.removeItem(keyStorage);
  else sessionStorage.setItem(keyStorage, key);
}

/** newClients returns clients that authenticate with key. */
export function newClients(key: string, baseUrl: string = location.origin): Clients {
  const withKey: Interceptor = (next) => (req) => {
    req.header.set("X-API-Key", key);
    return next(req);
  };
  // JSON rather than binary: the same snake_case JSON the REST API speaks,
  // readable in the browser's network panel.
  const transport = createConnectTransport({ baseUrl, useBinaryFormat: false, interceptors: [withKey] });
  return {
    exports: createClient(ExportService, transport),
    downloads: createClient(DownloadService, transport),
    tenant: createClient(TenantService, transport),
  };
}

/** DownloadMethod says how a download reached the browser. */
export type DownloadMethod = "link" | "stream";

/**
 * downloadExport saves a report as a file. It mints a single-use download
 * link and lets the browser fetch it, so the file streams straight to disk.
 * A server that does not offer links yet (`unimplemented`) gets the report
 * over the DownloadService.Download stream instead, assembled in memory.
 */
export async function downloadExport(c: Clients, jobId: string, fallbackName: string): Promise<DownloadMethod> {
  try {
    const link = await c.downloads.createDownloadLink({ jobId });
    clickDownload(new URL(link.url, location.origin).toString(), "");
    return "link";
  } catch (e) {
    if (ConnectError.from(e).code !== Code.Unimplemented) throw e;
  }
  const parts: Uint8Array<ArrayBuffer>[] = [];
  let name = fallbackName;
  let type = "application/octet-stream";
  for await (const m of c.downloads.download({ jobId })) {
    switch (m.msg.case) {
      case "info":
        name = m.msg.value.filename || name;
        type = m.msg.value.contentType || type;
        break;
      case "chunk":
        parts.push(new Uint8Array(m.msg.value.data));
        break;
    }
  }
  const url = URL.createObjectURL(new Blob(parts, { type }));
  try {
    clickDownload(url, name);
  } finally {
    // The click has handed the blob to the download manager; release it
    // after the browser had a chance to start.
    setTimeout(() => URL.revokeObjectURL(url), 60_000);
  }
  return "stream";
}

/** clickDownload follows a hidden <a download> so the browser saves the response. */
function clickDownload(href: string, filename: string): void {
  const a = document.createElement("a");
  a.href = href;
  a.download = filename;
  a.rel = "noopener";
  a.hidden = true;
  document.body.append(a);
  a.click();
  a.remove();
}
