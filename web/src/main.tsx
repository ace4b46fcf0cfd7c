// Entry point of the exportd console.
import { createRoot } from "react-dom/client";
import { App } from "./App";
import { ToastProvider } from "./Toasts";
import "./styles.css";

createRoot(document.getElementById("root")!).render(
  <ToastProvider>
    <App />
  </ToastProvider>,
);
