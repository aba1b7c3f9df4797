// The console's entry point: bundled by http/console-routes.ts, loaded by /ui/.
import { render } from "preact";
import { App } from "./app.tsx";
import "./style.css";

render(<App />, document.getElementById("app")!);
