"""Screenshot a `hetplace report` page in a real headless browser, once per breakpoint, and check its layout.

Not run in CI (playwright and chromium are not dev dependencies). On a Debian/Ubuntu machine:

    apt-get update && apt-get install -y chromium
    pip install playwright            # the system chromium is used, no `playwright install` download
    hetplace report SCENARIO.yaml --out /tmp/report
    python scripts/screenshot_report.py /tmp/report/report.html --out /tmp/shots

It writes one full-page PNG per breakpoint (phone 390 px, laptop 1280 px wide) and prints, per breakpoint, whether
the page itself scrolls sideways (it must not: wide tables scroll inside their own box), how many tables are wider
than the screen (those scroll in their box), and any image that failed to load. Exit 1 if the page overflows or an
image is missing, so a regression is visible without opening the PNGs. `--chromium` (or $CHROMIUM) points at the
browser binary; default: `chromium` on PATH.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from pathlib import Path

BREAKPOINTS = {"phone": (390, 844), "laptop": (1280, 800)}

LAYOUT_JS = """() => {
  const doc = document.scrollingElement;
  const boxes = [...document.querySelectorAll('.scroll')];
  return {
    page_width: doc.scrollWidth,
    view_width: window.innerWidth,
    tables: boxes.length,
    tables_scrolling: boxes.filter(b => b.scrollWidth > b.clientWidth + 1).length,
    broken_images: [...document.images].filter(i => !i.complete || i.naturalWidth === 0).map(i => i.src),
  };
}"""


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("page", type=Path, help="report.html written by `hetplace report`")
    ap.add_argument("--out", type=Path, default=Path("screenshots"), help="folder for the PNGs")
    ap.add_argument("--chromium", default=os.environ.get("CHROMIUM") or shutil.which("chromium"))
    args = ap.parse_args(argv)
    if not args.page.is_file():
        print(f"error: {args.page}: no such file", file=sys.stderr)
        return 2
    if not args.chromium:
        print("error: no chromium found; install it or pass --chromium PATH", file=sys.stderr)
        return 2
    from playwright.sync_api import sync_playwright  # only this script needs it

    args.out.mkdir(parents=True, exist_ok=True)
    failed = False
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=args.chromium, args=["--no-sandbox"])
        for name, (width, height) in BREAKPOINTS.items():
            page = browser.new_page(viewport={"width": width, "height": height}, device_scale_factor=1)
            page.goto(args.page.resolve().as_uri())
            page.wait_for_load_state("load")
            layout = page.evaluate(LAYOUT_JS)
            shot = args.out / f"report-{name}-{width}px.png"
            page.screenshot(path=str(shot), full_page=True)
            overflow = layout["page_width"] > layout["view_width"]
            failed |= overflow or bool(layout["broken_images"])
            print(json.dumps({"breakpoint": name, "png": str(shot), "page_overflows": overflow, **layout}))
            page.close()
        browser.close()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
