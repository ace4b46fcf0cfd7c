import { describe, expect, it } from "vitest";
import { create, toBinary } from "@bufbuild/protobuf";
import { base64Encode } from "@bufbuild/protobuf/wire";
import { errorFromJson } from "@connectrpc/connect/protocol-connect";
import { Code, ConnectError } from "@connectrpc/connect";
import { FieldPathElementSchema, FieldPathSchema, ViolationSchema, ViolationsSchema } from "@gen/buf/validate/validate_pb.js";
import { addOnsPath, describeError } from "./errors";

function violations(...vs: [string, string][]) {
  return {
    desc: ViolationsSchema,
    value: create(ViolationsSchema, {
      violations: vs.map(([field, message]) =>
        create(ViolationSchema, {
          field: create(FieldPathSchema, { elements: [create(FieldPathElementSchema, { fieldName: field })] }),
          ruleId: "rule",
          message,
        }),
      ),
    }),
  };
}

describe("describeError", () => {
  it("puts field violations next to their fields", () => {
    const err = new ConnectError("validation error", Code.InvalidArgument, undefined, [
      violations(["end_date", "must not be before start_date"], ["start_date", "must be in the past"]),
    ]);
    const v = describeError(err);
    expect(v.code).toBe(Code.InvalidArgument);
    expect(v.fields).toEqual({ end_date: "Must not be before start_date.", start_date: "Must be in the past." });
  });

  it("decodes violations as they arrive on the wire (Connect JSON error body)", () => {
    // The body exportd sends: the detail as its type name and base64 protobuf bytes.
    const bytes = toBinary(ViolationsSchema, violations(["report_type", "must be in list [soc2, gdpr, hipaa]"]).value);
    const body = {
      code: "invalid_argument",
      message: "validation error: report_type: must be in list [soc2, gdpr, hipaa]",
      details: [{ type: "buf.validate.Violations", value: base64Encode(bytes, "std_raw") }],
    };
    const v = describeError(errorFromJson(body, undefined, new ConnectError("fallback", Code.Unknown)));
    expect(v.code).toBe(Code.InvalidArgument);
    expect(v.fields).toEqual({ report_type: "Must be in list [soc2, gdpr, hipaa]." });
  });

  it("links the missing Compliance Pack to Billing › Add-ons", () => {
    const v = describeError(
      new ConnectError(
        "the Compliance Pack add-on is not enabled for this tenant: enable it from Settings › Billing › Add-ons in the console, or ask your account manager",
        Code.FailedPrecondition,
      ),
    );
    expect(v.title).toBe("The Compliance Pack is not enabled");
    expect(v.action).toEqual({ label: "Open Billing › Add-ons", href: addOnsPath });
  });

  it("says which permission is missing and whom to ask", () => {
    const v = describeError(new ConnectError(`role "viewer" lacks the tenant.audit.export permission`, Code.PermissionDenied));
    expect(v.title).toBe("Permission needed");
    expect(v.message).toContain(`Role "viewer" lacks the tenant.audit.export permission.`);
    expect(v.message).toContain("ask a tenant admin");
  });

  it("tells a policy denial apart from a missing permission", () => {
    const v = describeError(new ConnectError(`denied by BUNDLE_EXPORT policy "tier-1 only"`, Code.PermissionDenied));
    expect(v.title).toBe("Blocked by an issuance policy");
    expect(v.message).toContain(`"tier-1 only"`);
  });

  it("asks to sign in again on an invalid key", () => {
    expect(describeError(new ConnectError("invalid API key", Code.Unauthenticated)).title).toBe("Sign in again");
  });

  it("treats anything thrown as an error", () => {
    expect(describeError(new TypeError("Failed to fetch")).title).toBe("Cannot reach exportd");
  });
});
