// The console's pages, in the order of the navigation. A new page is a
// component and a line here.

import type { FunctionComponent } from "preact";
import type { Route } from "./route.ts";
import type { SessionJson } from "./session.ts";
import { AdePage } from "./pages/ade.tsx";
import { AuditLogPage } from "./pages/audit.tsx";
import { DdmPage } from "./pages/ddm.tsx";
import { DevicePage } from "./pages/device.tsx";
import { DevicesPage } from "./pages/devices.tsx";
import { EnrollmentPage } from "./pages/enrollment.tsx";
import { EventsPage } from "./pages/events.tsx";
import { FleetPage } from "./pages/fleet.tsx";
import { OperatorsPage } from "./pages/operators.tsx";
import { UpdatesPage } from "./pages/updates.tsx";
import { UsersPage } from "./pages/users.tsx";

export interface PageProps {
  route: Route;
  session: SessionJson;
}

export interface PageEntry {
  /** The first part of the fragment: `#/devices`. */
  path: string;
  title: string;
  /** The navigation's shorter name, when the title is long. */
  nav?: string;
  component: FunctionComponent<PageProps>;
  /** Not in the navigation (reached by a link). */
  hidden?: boolean;
}

export const PAGES: readonly PageEntry[] = [
  { path: "fleet", title: "Fleet", component: FleetPage },
  { path: "devices", title: "Devices", component: DevicesPage },
  { path: "device", title: "Device", component: DevicePage, hidden: true },
  { path: "users", title: "Network users", component: UsersPage },
  { path: "ddm", title: "Declarations", component: DdmPage },
  { path: "updates", title: "OS updates", component: UpdatesPage },
  { path: "enrollment", title: "Enrollment", component: EnrollmentPage },
  { path: "ade", title: "ADE", component: AdePage },
  { path: "events", title: "Events", component: EventsPage },
  { path: "audit", title: "Audit log", component: AuditLogPage },
  { path: "operators", title: "Operators and tokens", nav: "Operators", component: OperatorsPage },
];
