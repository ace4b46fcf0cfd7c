// Notifications: a polite live region, so screen readers announce them, and
// the document title, so a report that becomes ready while the tab is in the
// background shows in the tab strip.
import { createContext, useCallback, useContext, useEffect, useMemo, useState, type ReactNode } from "react";

/** Toast is one notification. */
export interface Toast {
  id: number;
  tone: "success" | "error" | "info";
  title: string;
  body?: string;
  action?: { label: string; run: () => void };
  /** title of the document while the toast is shown. */
  documentTitle?: string;
}

interface ToastApi {
  push: (t: Omit<Toast, "id">) => void;
}

const ToastContext = createContext<ToastApi>({ push: () => {} });

/** useToasts returns the notifier. */
export function useToasts(): ToastApi {
  return useContext(ToastContext);
}

/** baseTitle is the console's document title. */
export const baseTitle = "exportd console";

/** ToastProvider renders the notifications above everything. */
export function ToastProvider({ children }: { children: ReactNode }) {
  const [toasts, setToasts] = useState<Toast[]>([]);
  const dismiss = useCallback((id: number) => setToasts((ts) => ts.filter((t) => t.id !== id)), []);
  const api = useMemo<ToastApi>(
    () => ({
      push: (t) => {
        const id = Date.now() + Math.random();
        setToasts((ts) => [...ts, { ...t, id }]);
        // Errors and plain info fade; "ready" notices stay until handled.
        if (!t.action) setTimeout(() => dismiss(id), 8000);
      },
    }),
    [dismiss],
  );
  useEffect(() => {
    const titled = toasts.filter((t) => t.documentTitle);
    document.title = titled.length ? titled[titled.length - 1].documentTitle! : baseTitle;
  }, [toasts]);
  return (
    <ToastContext.Provider value={api}>
      {children}
      <div className="toasts" role="status" aria-live="polite">
        {toasts.map((t) => (
          <div key={t.id} className={`toast toast-${t.tone}`} data-testid="toast">
            <div className="toast-text">
              <strong>{t.title}</strong>
              {t.body && <span>{t.body}</span>}
            </div>
            <div className="toast-actions">
              {t.action && (
                <button
                  type="button"
                  className="btn btn-primary btn-small"
                  onClick={() => {
                    t.action!.run();
                    dismiss(t.id);
                  }}
                >
                  {t.action.label}
                </button>
              )}
              <button type="button" className="btn btn-ghost btn-small" aria-label={`Dismiss: ${t.title}`} onClick={() => dismiss(t.id)}>
                ✕
              </button>
            </div>
          </div>
        ))}
      </div>
    </ToastContext.Provider>
  );
}
