// A tiny path router: the console has three pages, so history.pushState and
// a popstate listener are all it needs. exportd serves index.html for every
// console path, so deep links and reloads work.
import { useEffect, useState } from "react";

/** Route names the console's pages. */
export type Route = "audit" | "addons";

/** routes maps each page to its path. */
export const routes: Record<Route, string> = {
  audit: "/settings/audit",
  addons: "/settings/billing/add-ons",
};

/** routeOf reads the page from a path; unknown paths show the exports page. */
export function routeOf(path: string): Route {
  return path.startsWith(routes.addons) ? "addons" : "audit";
}

/** navigate moves to a console path without reloading. */
export function navigate(path: string): void {
  if (location.pathname === path) return;
  history.pushState(null, "", path);
  dispatchEvent(new PopStateEvent("popstate"));
}

/** useRoute follows the current page. */
export function useRoute(): Route {
  const [route, setRoute] = useState(() => routeOf(location.pathname));
  useEffect(() => {
    const on = () => setRoute(routeOf(location.pathname));
    addEventListener("popstate", on);
    return () => removeEventListener("popstate", on);
  }, []);
  return route;
}

/** linkProps makes an <a> navigate inside the console on a plain click. */
export function linkProps(path: string) {
  return {
    href: path,
    onClick: (e: React.MouseEvent<HTMLAnchorElement>) => {
      if (e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
      e.preventDefault();
      navigate(path);
    },
  };
}
