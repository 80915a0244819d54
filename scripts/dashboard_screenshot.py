"""Screenshot a study's optuna-dashboard page (the Pareto front) with headless Chromium.

    python scripts/dashboard_screenshot.py studies/demo.db --out screens/demo.png [--publish]

Serves the dashboard in-process on a free 127.0.0.1 port (as ``hpo dashboard`` does), points
a throw-away headless Chromium profile at the study's top page, which for a multi-objective
study leads with the Pareto-front plot, and writes the PNG. Chromium flags switch off
everything that phones home, so it works offline. Debian: ``apt-get install -y chromium``.

:func:`inspect_page` drives Chromium over the DevTools protocol instead (``websocket-client``,
the ``test`` extra): it collects console errors and uncaught exceptions, waits until every
plotly figure has drawn, and returns the full-page screenshot with each figure's box, which
is what the browser test checks.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a source checkout

import optuna  # noqa: E402

from hpo.dashboard import make_server, publish_figures, study_url  # noqa: E402
from hpo.storage import open_storage  # noqa: E402

PAGES = {"top": "", "analytics": "/analytics", "trials": "/trials"}
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
]


def _storage_url(study_db: str) -> str:
    return study_db if "://" in study_db else f"sqlite:///{Path(study_db).resolve()}"


def _study_name(storage, wanted: str | None, shown: str) -> str:
    names = [s.study_name for s in optuna.get_all_study_summaries(storage, include_best_trial=False)]
    if wanted is not None and wanted in names:
        return wanted
    if wanted is None and len(names) == 1:
        return names[0]
    raise SystemExit(f"error: {shown}: pass --study, one of: {', '.join(names) or 'none'}")


def screenshot(
    study_db: str,
    out: Path,
    *,
    study: str | None = None,
    page: str = "top",
    publish: bool = False,
    size: tuple[int, int] = (1400, 1000),
    budget_ms: int = 15000,
    chromium: str = "/usr/bin/chromium",
) -> Path:
    """Serve, shoot, shut down; returns the PNG path."""
    if not Path(chromium).exists():
        raise SystemExit(f"error: {chromium}: not found (Debian: apt-get install -y chromium)")
    if not study_db.startswith(("sqlite:", "postgresql", "journal:")) and not Path(study_db).is_file():
        raise SystemExit(f"error: {study_db}: no such file")
    url = _storage_url(study_db)
    storage = open_storage(url)
    name = _study_name(storage, study, study_db)
    loaded = optuna.load_study(study_name=name, storage=storage)
    if publish:
        publish_figures(loaded)
    out = Path(out).resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    out.unlink(missing_ok=True)
    server = make_server(storage, "127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        target = study_url(server, loaded) + PAGES[page]
        with tempfile.TemporaryDirectory(prefix="chromium-") as profile:
            cmd = [
                chromium,
                *CHROMIUM_FLAGS,
                f"--user-data-dir={profile}",
                f"--window-size={size[0]},{size[1]}",
                f"--virtual-time-budget={budget_ms}",
                f"--screenshot={out}",
                target,
            ]
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=180)
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
    if not out.is_file():
        raise SystemExit(
            f"error: chromium wrote no screenshot (exit {done.returncode}): {done.stderr.strip()[-400:]}"
        )
    return out


# Every plotly figure on the page: its title and box (page coordinates, CSS pixels), and
# how many traces it drew.
_FIGURES_JS = """JSON.stringify(Array.from(document.querySelectorAll('.js-plotly-plot')).map(p => {
  const r = p.getBoundingClientRect();
  const title = p.querySelector('.gtitle');  // plotly's own title, else the dashboard card's heading
  const card = p.closest('.MuiPaper-root');
  const heading = card ? card.querySelector('h1, h2, h3, h4, h5, h6') : null;
  return {title: title ? title.textContent : (heading ? heading.textContent : ''), x: r.left + window.scrollX, y: r.top + window.scrollY,
          width: r.width, height: r.height, traces: p.querySelectorAll('.trace').length};
}))"""


@dataclass
class PageReport:
    """What :func:`inspect_page` saw: console errors, the figures drawn, the screenshot."""

    screenshot: Path
    figures: list[dict] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


class _DevTools:
    """The few DevTools-protocol calls the check needs, over one page target's websocket."""

    def __init__(self, ws_url: str) -> None:
        import websocket  # the test extra: websocket-client

        self.ws = websocket.create_connection(ws_url, timeout=60, suppress_origin=True)
        self.next_id, self.events = 0, []

    def call(self, method: str, **params: object) -> dict:
        self.next_id += 1
        self.ws.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:
            msg = json.loads(self.ws.recv())
            if msg.get("id") == self.next_id:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg.get("result", {})
            self.events.append(msg)

    def close(self) -> None:
        self.ws.close()


def _errors(events: list[dict]) -> list[str]:
    out = []
    for e in events:
        method, p = e.get("method"), e.get("params", {})
        if method == "Runtime.exceptionThrown":
            details = p.get("exceptionDetails", {})
            out.append(f"uncaught: {details.get('exception', {}).get('description') or details.get('text')}")
        elif method == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
            out.append(
                "console.error: "
                + " ".join(str(a.get("value", a.get("description", ""))) for a in p.get("args", []))
            )
        elif method == "Log.entryAdded" and p.get("entry", {}).get("level") == "error":
            entry = p["entry"]
            out.append(f"{entry.get('source')}: {entry.get('text')} {entry.get('url', '')}".strip())
    return out


def inspect_page(
    url: str,
    out: Path,
    *,
    chromium: str = "/usr/bin/chromium",
    size: tuple[int, int] = (1400, 1000),
    figures: int = 1,
    timeout_s: float = 120.0,
) -> PageReport:
    """Open ``url`` in headless Chromium, wait until at least ``figures`` plotly figures have
    drawn traces (or ``timeout_s``), and write a full-page PNG to ``out``."""
    import base64

    out = Path(out).resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="chromium-") as profile:
        proc = subprocess.Popen(
            [
                chromium,
                *CHROMIUM_FLAGS,
                f"--user-data-dir={profile}",
                f"--window-size={size[0]},{size[1]}",
                "--remote-debugging-port=0",
                "--remote-allow-origins=*",
                "about:blank",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            port_file = Path(profile) / "DevToolsActivePort"
            deadline = time.monotonic() + 60
            while not port_file.is_file() or not port_file.read_text().strip():
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(
                        f"chromium did not start (exit {proc.poll()}): {proc.stderr.read()[-400:]}"
                    )
                time.sleep(0.2)
            port = port_file.read_text().split()[0]
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=30) as resp:
                page = next(t for t in json.load(resp) if t["type"] == "page")
            tools = _DevTools(page["webSocketDebuggerUrl"])
            try:
                for domain in ("Page", "Runtime", "Log"):
                    tools.call(f"{domain}.enable")
                tools.call("Page.navigate", url=url)
                drawn: list[dict] = []
                deadline = time.monotonic() + timeout_s
                while time.monotonic() < deadline:
                    value = tools.call("Runtime.evaluate", expression=_FIGURES_JS)["result"].get(
                        "value", "[]"
                    )
                    drawn = json.loads(value)
                    if len([f for f in drawn if f["traces"]]) >= figures:
                        break
                    time.sleep(0.5)
                time.sleep(1.0)  # the last transitions
                drawn = json.loads(
                    tools.call("Runtime.evaluate", expression=_FIGURES_JS)["result"].get("value", "[]")
                )
                metrics = tools.call("Page.getLayoutMetrics")
                content = metrics.get("cssContentSize") or metrics["contentSize"]
                shot = tools.call(
                    "Page.captureScreenshot",
                    format="png",
                    captureBeyondViewport=True,
                    clip={"x": 0, "y": 0, "width": content["width"], "height": content["height"], "scale": 1},
                )
                out.write_bytes(base64.b64decode(shot["data"]))
                tools.call("Runtime.evaluate", expression="1")  # collect what arrived meanwhile
                return PageReport(out, drawn, _errors(tools.events))
            finally:
                tools.close()
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("study_db", help="SQLite file of the study (or a storage URL)")
    parser.add_argument("--out", required=True, type=Path, help="PNG to write")
    parser.add_argument("--study", help="study name (default: the only study in the storage)")
    parser.add_argument(
        "--page", choices=sorted(PAGES), default="top", help="dashboard page (top: Pareto front)"
    )
    parser.add_argument(
        "--publish",
        action="store_true",
        help="store hpo's figures in the study first (as hpo dashboard does)",
    )
    parser.add_argument("--width", type=int, default=1400)
    parser.add_argument("--height", type=int, default=1000)
    parser.add_argument(
        "--budget-ms", type=int, default=15000, help="virtual time for the page to load and draw"
    )
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    args = parser.parse_args(argv)
    path = screenshot(
        args.study_db,
        args.out,
        study=args.study,
        page=args.page,
        publish=args.publish,
        size=(args.width, args.height),
        budget_ms=args.budget_ms,
        chromium=args.chromium,
    )
    print(path)


if __name__ == "__main__":
    main()
