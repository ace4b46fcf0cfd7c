// Turning API errors into what a person can act on. The server's message is
// kept (it names the role, the policy, the job), and the console adds what to
// do next; field violations go next to their fields.
import { Code, ConnectError } from "@connectrpc/connect";
import { ViolationsSchema } from "@gen/buf/validate/validate_pb.js";

/** ErrorView is an error as the console shows it. */
export interface ErrorView {
  /** title is a short headline, e.g. "Permission needed". */
  title: string;
  /** message says what happened and what to do. */
  message: string;
  /** fields maps a request field (snake_case) to its problem. */
  fields: Record<string, string>;
  /** action links to where the problem is solved, when there is such a page. */
  action?: { label: string; href: string };
  /** code is the Connect code, for tests and logs. */
  code: Code;
}

/** addOnsPath is the console page where the Compliance Pack is switched on. */
export const addOnsPath = "/settings/billing/add-ons";

/** fieldName reads the first element of a violation's field path. */
function fieldName(v: { field?: { elements: { fieldName: string }[] } }): string {
  const els = v.field?.elements ?? [];
  return els.map((e) => e.fieldName).join(".") || "request";
}

/** violationsOf decodes buf.validate.Violations details into field → message. */
export function violationsOf(err: ConnectError): Record<string, string> {
  const out: Record<string, string> = {};
  for (const vs of err.findDetails(ViolationsSchema)) {
    for (const v of vs.violations) {
      const name = fieldName(v);
      const msg = sentence(v.message);
      out[name] = out[name] ? `${out[name]} ${msg}` : msg;
    }
  }
  return out;
}

/**
 * sentence ends a server message with a full stop and capitalises it, unless
 * it starts with an identifier (`end_date …`, `role "viewer" …` stays as the
 * server wrote it when the first word is a name).
 */
function sentence(s: string): string {
  if (!s) return s;
  const first = s.split(/\s/, 1)[0];
  const t = /^[a-z]+$/.test(first) ? s.charAt(0).toUpperCase() + s.slice(1) : s;
  return /[.!?]$/.test(t) ? t : `${t}.`;
}

/** describeError explains any error thrown by a client call. */
export function describeError(e: unknown): ErrorView {
  const err = ConnectError.from(e);
  const raw = err.rawMessage;
  const base = { fields: {}, code: err.code };
  switch (err.code) {
    case Code.InvalidArgument: {
      const fields = violationsOf(err);
      const n = Object.keys(fields).length;
      return {
        ...base,
        fields,
        title: "Check the highlighted fields",
        message: n > 0 ? "The server refused some values; each problem is shown next to its field." : sentence(raw),
      };
    }
    case Code.FailedPrecondition:
      if (/compliance pack/i.test(raw)) {
        return {
          ...base,
          title: "The Compliance Pack is not enabled",
          message:
            "Creating exports needs the Compliance Pack add-on. A tenant admin can enable it in Settings › Billing › Add-ons, or ask your account manager.",
          action: { label: "Open Billing › Add-ons", href: addOnsPath },
        };
      }
      return { ...base, title: "Not possible right now", message: sentence(raw) };
    case Code.PermissionDenied:
      if (/polic/i.test(raw)) {
        return {
          ...base,
          title: "Blocked by an issuance policy",
          message: `${sentence(raw)} Ask a tenant admin to review the BUNDLE_EXPORT issuance policies if this export should be allowed.`,
        };
      }
      return {
        ...base,
        title: "Permission needed",
        message: `${sentence(raw)} Creating and downloading exports needs the tenant.audit.export permission (roles admin or auditor): ask a tenant admin for such a key.`,
      };
    case Code.Unauthenticated:
      return { ...base, title: "Sign in again", message: `${sentence(raw)} Paste a valid API key to continue.` };
    case Code.NotFound:
      return { ...base, title: "Not found", message: "That export does not exist or belongs to another tenant." };
    case Code.Unimplemented:
      return { ...base, title: "Not available on this server", message: "This exportd does not offer this feature yet." };
    case Code.Unavailable:
    case Code.Unknown:
      return { ...base, title: "Cannot reach exportd", message: "The server did not answer. Check your connection and try again." };
    default:
      return { ...base, title: "Something went wrong", message: sentence(raw) || "The server reported an error." };
  }
}
