// The console shell: sign-in with an API key, then the sidebar (Settings ›
// Audit, Settings › Billing › Add-ons), the signed-in identity and sign-out.
import { useCallback, useEffect, useState, type FormEvent } from "react";
import type { WhoAmIResponse } from "@gen/audit/v1/export_pb.js";
import { newClients, storeKey, storedKey, type Clients } from "./api";
import { describeError, type ErrorView } from "./errors";
import { linkProps, routes, useRoute } from "./router";
import { ExportsPage } from "./ExportsPage";
import { AddOnsPage } from "./AddOnsPage";

interface Session {
  clients: Clients;
  me: WhoAmIResponse;
}

/** App is the whole console. */
export function App() {
  const [session, setSession] = useState<Session | null>(null);
  const [restoring, setRestoring] = useState(() => storedKey() !== null);
  const [error, setError] = useState<ErrorView | null>(null);

  const signIn = useCallback(async (key: string) => {
    const clients = newClients(key);
    try {
      const me = await clients.exports.whoAmI({});
      storeKey(key);
      setError(null);
      setSession({ clients, me });
    } catch (e) {
      storeKey(null);
      setError(describeError(e));
    }
  }, []);

  useEffect(() => {
    const key = storedKey();
    if (key) void signIn(key).finally(() => setRestoring(false));
  }, [signIn]);

  const signOut = useCallback(() => {
    storeKey(null);
    setSession(null);
  }, []);

  if (restoring) return <div className="center muted">Signing in…</div>;
  if (!session) return <SignIn onSignIn={signIn} error={error} />;
  return <Shell session={session} onSignOut={signOut} />;
}

function SignIn({ onSignIn, error }: { onSignIn: (key: string) => Promise<void>; error: ErrorView | null }) {
  const [key, setKey] = useState("");
  const [busy, setBusy] = useState(false);
  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setBusy(true);
    await onSignIn(key.trim());
    setBusy(false);
  };
  return (
    <main className="signin">
      <form className="card signin-card" onSubmit={submit} aria-labelledby="signin-title">
        <div className="brand brand-large">
          <Logo /> exportd
        </div>
        <h1 id="signin-title">Sign in to the console</h1>
        <p className="muted">
          Paste an API key of your tenant. It is kept in this browser tab only and sent with every request.
        </p>
        <label htmlFor="api-key">API key</label>
        <input
          id="api-key"
          name="api-key"
          type="password"
          autoComplete="off"
          spellCheck={false}
          placeholder="tl_live_…"
          value={key}
          onChange={(e) => setKey(e.target.value)}
          aria-invalid={error ? true : undefined}
          aria-describedby={error ? "signin-error" : undefined}
          required
          autoFocus
        />
        {error && (
          <p id="signin-error" className="field-error" role="alert">
            {error.message}
          </p>
        )}
        <button type="submit" className="btn btn-primary btn-block" disabled={busy || key.trim() === ""}>
          {busy ? "Signing in…" : "Sign in"}
        </button>
      </form>
    </main>
  );
}

function Shell({ session, onSignOut }: { session: Session; onSignOut: () => void }) {
  // The console's home is Settings › Audit.
  if (location.pathname === "/") history.replaceState(null, "", routes.audit);
  const route = useRoute();
  const { me, clients } = session;
  return (
    <div className="shell">
      <a className="skip-link" href="#main">
        Skip to content
      </a>
      <nav className="sidebar" aria-label="Console">
        <div className="brand">
          <Logo /> exportd
        </div>
        <div className="nav-group">Settings</div>
        <a className={`nav-link ${route === "audit" ? "active" : ""}`} aria-current={route === "audit" ? "page" : undefined} {...linkProps(routes.audit)}>
          Audit
        </a>
        <div className="nav-sub">Billing</div>
        <a className={`nav-link nav-indent ${route === "addons" ? "active" : ""}`} aria-current={route === "addons" ? "page" : undefined} {...linkProps(routes.addons)}>
          Add-ons
        </a>
        <div className="sidebar-foot muted">All times are UTC.</div>
      </nav>
      <div className="content">
        <header className="topbar">
          <div className="crumbs" aria-label="Breadcrumb">
            Settings › {route === "audit" ? "Audit" : "Billing › Add-ons"}
          </div>
          <div className="whoami" data-testid="whoami">
            <div className="whoami-text">
              <span className="whoami-tenant">{me.tenantName || me.tenantId}</span>
              <span className="muted">
                {me.principal} · <span className={`role role-${me.role}`}>{me.role}</span>
              </span>
            </div>
            <button type="button" className="btn btn-ghost" onClick={onSignOut}>
              Sign out
            </button>
          </div>
        </header>
        <main id="main" tabIndex={-1}>
          {route === "audit" ? <ExportsPage clients={clients} me={me} /> : <AddOnsPage clients={clients} me={me} />}
        </main>
      </div>
    </div>
  );
}

function Logo() {
  return (
    <svg className="logo" viewBox="0 0 24 24" aria-hidden="true">
      <rect x="3" y="3" width="18" height="18" rx="5" fill="currentColor" opacity="0.15" />
      <path d="M8 12.5l2.5 2.5L16 9.5" fill="none" stroke="currentColor" strokeWidth="2.2" strokeLinecap="round" strokeLinejoin="round" />
    </svg>
  );
}
