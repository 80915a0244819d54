"""Screenshot a study's optuna-dashboard page (the Pareto front) with headless Chromium.

    python scripts/dashboard_screenshot.py studies/demo.db --out screens/demo.png [--publish]

Serves the dashboard in-process on a free 127.0.0.1 port (as ``hpo dashboard`` does), points
a throw-away headless Chromium profile at the study's top page, which for a multi-objective
study leads with the Pareto-front plot, and writes the PNG. Chromium flags switch off
everything that phones home, so it works offline. Debian: ``apt-get install -y chromium``.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a source checkout

import optuna  # noqa: E402

from hpo.dashboard import make_server, publish_figures, study_url  # noqa: E402
from hpo.storage import open_storage  # noqa: E402

PAGES = {"top": "", "analytics": "/analytics", "trials": "/trials"}
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync", "--hide-scrollbars",
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


def screenshot(study_db: str, out: Path, *, study: str | None = None, page: str = "top", publish: bool = False,
               size: tuple[int, int] = (1400, 1000), budget_ms: int = 15000, chromium: str = "/usr/bin/chromium") -> Path:
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
            cmd = [chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", f"--window-size={size[0]},{size[1]}",
                   f"--virtual-time-budget={budget_ms}", f"--screenshot={out}", target]
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=180)
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
    if not out.is_file():
        raise SystemExit(f"error: chromium wrote no screenshot (exit {done.returncode}): {done.stderr.strip()[-400:]}")
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("study_db", help="SQLite file of the study (or a storage URL)")
    parser.add_argument("--out", required=True, type=Path, help="PNG to write")
    parser.add_argument("--study", help="study name (default: the only study in the storage)")
    parser.add_argument("--page", choices=sorted(PAGES), default="top", help="dashboard page (top: Pareto front)")
    parser.add_argument("--publish", action="store_true", help="store hpo's figures in the study first (as hpo dashboard does)")
    parser.add_argument("--width", type=int, default=1400)
    parser.add_argument("--height", type=int, default=1000)
    parser.add_argument("--budget-ms", type=int, default=15000, help="virtual time for the page to load and draw")
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    args = parser.parse_args(argv)
    path = screenshot(args.study_db, args.out, study=args.study, page=args.page, publish=args.publish,
                      size=(args.width, args.height), budget_ms=args.budget_ms, chromium=args.chromium)
    print(path)


if __name__ == "__main__":
    main()
