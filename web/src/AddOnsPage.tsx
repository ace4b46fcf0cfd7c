// Settings › Billing › Add-ons: the Compliance Pack. Everyone who can read
// sees whether it is on; an admin (tenant.settings.manage) switches it.
// Billing itself is out of scope: switching is recorded as an audit event.
import { useEffect, useState } from "react";
import type { WhoAmIResponse } from "@gen/audit/v1/export_pb.js";
import type { Tenant } from "@gen/audit/v1/tenant_pb.js";
import type { Clients } from "./api";
import { describeError, type ErrorView } from "./errors";
import { useToasts } from "./Toasts";

const compliancePack = "compliance_pack";
const settingsPermission = "tenant.settings.manage";

/** AddOnsPage shows and toggles the tenant's add-ons. */
export function AddOnsPage({ clients, me }: { clients: Clients; me: WhoAmIResponse }) {
  const [tenant, setTenant] = useState<Tenant | null>(null);
  const [error, setError] = useState<ErrorView | null>(null);
  const [busy, setBusy] = useState(false);
  const toasts = useToasts();
  const canManage = me.permissions.includes(settingsPermission);

  useEffect(() => {
    clients.tenant
      .getTenant({})
      .then((r) => setTenant(r.tenant ?? null))
      .catch((e) => setError(describeError(e)));
  }, [clients]);

  // Until GetTenant answers, WhoAmI's add-ons say what is enabled.
  const enabled = (tenant?.addOns ?? me.addOns).includes(compliancePack);

  const toggle = async () => {
    setBusy(true);
    try {
      const r = await clients.tenant.setAddOn({ addOn: compliancePack, enabled: !enabled });
      setTenant(r.tenant ?? null);
      setError(null);
      toasts.push({ tone: "success", title: `Compliance Pack ${enabled ? "disabled" : "enabled"}` });
    } catch (e) {
      const v = describeError(e);
      setError(v);
      toasts.push({ tone: "error", title: v.title, body: v.message });
    } finally {
      setBusy(false);
    }
  };

  return (
    <section aria-labelledby="addons-title">
      <div className="page-head">
        <div>
          <h1 id="addons-title">Add-ons</h1>
          <p className="muted">Features your tenant has enabled. Changes are recorded in the audit log with who made them and when.</p>
        </div>
      </div>
      {error && (
        <div className="alert alert-warn" role="alert">
          <strong>{error.title}</strong>
          <p>{error.message}</p>
        </div>
      )}
      <div className="card addon" data-testid="addon-compliance-pack">
        <div className="addon-text">
          <h2>
            Compliance Pack{" "}
            <span className={`badge ${enabled ? "badge-completed" : "badge-pending"}`} data-testid="addon-state">
              {enabled ? "Enabled" : "Not enabled"}
            </span>
          </h2>
          <p className="muted">
            SOC 2, GDPR and HIPAA compliance exports from your audit logs and attestation records, and download links for auditors. Reading
            existing exports stays possible without it.
          </p>
          {!canManage && <p className="hint">Only a tenant admin can change add-ons. Your role is {me.role}.</p>}
        </div>
        <label className="switch">
          <input
            type="checkbox"
            role="switch"
            aria-label="Compliance Pack"
            checked={enabled}
            disabled={!canManage || busy}
            onChange={() => void toggle()}
            aria-describedby="addon-desc"
          />
          <span id="addon-desc">{enabled ? "On" : "Off"}</span>
        </label>
      </div>
    </section>
  );
}
