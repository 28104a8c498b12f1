"""Render a deepseg report.html in headless Chromium: screenshot, DOM dump, request check.

    python scripts/render_report.py outputs/benchmark/<run>/report.html --screenshot shot.png

Checks that:
  * the HTML references nothing outside the page (no http(s)://, //host or file references in
    src/href/url(); images must be data: URIs);
  * Chromium's network log (--log-net-log) holds no request made by the page: a self-contained
    report makes none, so any such request is an external (and, offline, a failed) one.
    Chromium's own background requests (update checks) are not the page's and are ignored;
  * Chromium's log shows no failed request (net::ERR_...) and no uncaught console error;
  * Chromium loads the page and its DOM holds the leaderboard table and every image;
  * the page fits the window: no horizontal scroll at the window width (1280 px by default),
    neither of the page nor inside any element, and every plot is shown at (nearly) its own
    size, so that its labels keep their point size;
  * the screenshot is written.

Exit status 0 when every check passes, 1 otherwise (each problem on one line).
Chromium is the Debian package (``apt-get install chromium``, /usr/bin/chromium).
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

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
# Attributes and CSS that may load something; only data: URIs and in-page anchors are allowed
_REFERENCE = re.compile(
    r"""(?:src|href|srcset|poster|data)\s*=\s*["']([^"']*)["']"""
    r"""|url\(\s*["']?([^"')]*)""",
    re.IGNORECASE,
)
_FAILED = re.compile(r"net::ERR_[A-Z_]+|Failed to load resource|Uncaught|ERROR:CONSOLE", re.I)


def find_chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return "/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None


def external_references(html: str) -> list[str]:
    """Every reference in the page that is not a data: URI or an in-page anchor."""
    refs = []
    for match in _REFERENCE.finditer(html):
        ref = (match.group(1) or match.group(2) or "").strip()
        if ref and not ref.startswith(("data:", "#")):
            refs.append(ref[:80])
    return refs


def page_requests(net_log: Path) -> list[str]:
    """URLs the page itself requested over the network, from a Chromium ``--log-net-log`` file.

    A request belongs to the page when its network isolation key is the page's ``file://``
    origin; Chromium's own background requests have other keys.
    """
    log = json.loads(net_log.read_text())
    start_job = log["constants"]["logEventTypes"]["URL_REQUEST_START_JOB"]
    urls = []
    for event in log.get("events", []):
        params = event.get("params") or {}
        if event.get("type") != start_job or "url" not in params:
            continue
        if "file://" in str(params.get("network_isolation_key", "")) and not str(
            params["url"]
        ).startswith(("data:", "file:")):
            urls.append(str(params["url"])[:120])
    return urls


# Measures the layout after load and writes it into the DOM, where --dump-dom reads it
_LAYOUT_SCRIPT = """<script>
window.addEventListener("load", () => {
  const doc = document.documentElement;
  const wide = [];
  for (const el of document.querySelectorAll("body *")) {
    const ox = getComputedStyle(el).overflowX;
    if ((ox === "auto" || ox === "scroll") && el.scrollWidth > el.clientWidth + 1) {
      wide.push(el.tagName.toLowerCase() + "." + el.className + " " + el.scrollWidth + ">" +
                el.clientWidth);
    }
  }
  const shrunk = [];
  for (const img of document.querySelectorAll("img")) {
    if (img.naturalWidth && img.clientWidth < 0.95 * img.naturalWidth) {
      shrunk.push((img.alt || "image") + " at " +
                  Math.round(100 * img.clientWidth / img.naturalWidth) + "%");
    }
  }
  const out = document.createElement("pre");
  out.id = "deepseg-layout";
  out.textContent = JSON.stringify({page: doc.scrollWidth, window: window.innerWidth,
                                    wide: wide, shrunk: shrunk});
  document.body.appendChild(out);
});
</script>"""


def layout_problems(dom: str) -> list[str]:
    """Problems in the layout measured by ``_LAYOUT_SCRIPT`` (from the dumped DOM)."""
    match = re.search(r'<pre id="deepseg-layout">(.*?)</pre>', dom, re.S)
    if match is None:
        return ["the layout could not be measured (no result in the DOM)"]
    layout = json.loads(match.group(1).replace("&gt;", ">").replace("&amp;", "&"))
    problems = []
    if layout["page"] > layout["window"]:
        problems.append(
            f"the page scrolls sideways: {layout['page']} px wide in a {layout['window']} px "
            "window"
        )
    problems += [f"an element scrolls sideways: {w}" for w in layout["wide"]]
    problems += [f"a plot is shrunk (its labels with it): {s}" for s in layout["shrunk"]]
    return problems


def _run(cmd: list[str], timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)


def render(
    report: Path, screenshot: Path, chromium: str, width: int = 1280, height: int = 4000
) -> list[str]:
    """Render ``report`` and return the problems found (empty: every check passed)."""
    problems = []
    html = report.read_text(encoding="utf-8")
    problems += [f"external reference in the HTML: {r}" for r in external_references(html)]
    n_images = len(re.findall(r"<img\b", html))
    url = report.resolve().as_uri()
    with tempfile.TemporaryDirectory(prefix="deepseg-chromium-") as tmp:
        profile = Path(tmp) / "profile"
        net_log = Path(tmp) / "net-log.json"
        base = [chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}"]
        shot = _run(
            [
                *base,
                "--enable-logging=stderr",
                "--v=0",
                f"--log-net-log={net_log}",
                f"--screenshot={screenshot.resolve()}",
                f"--window-size={width},{height}",
                url,
            ],
            timeout=180,
        )
        dom = _run([*base, "--dump-dom", url], timeout=180)
        measured = Path(tmp) / "measured.html"
        measured.write_text(html.replace("</body>", _LAYOUT_SCRIPT + "</body>"), "utf-8")
        layout = _run(
            [*base, f"--window-size={width},{height}", "--dump-dom", measured.as_uri()],
            timeout=180,
        )
        problems += layout_problems(layout.stdout)
        if net_log.exists():
            problems += [f"the page made a network request: {u}" for u in page_requests(net_log)]
        else:
            problems.append("chromium wrote no network log")
    log = shot.stderr + dom.stderr
    problems += [
        f"chromium: {line.strip()[:200]}" for line in log.splitlines() if _FAILED.search(line)
    ]
    if shot.returncode != 0:
        problems.append(f"chromium --screenshot exited with {shot.returncode}")
    if not screenshot.exists() or screenshot.stat().st_size == 0:
        problems.append(f"no screenshot written to {screenshot}")
    if dom.returncode != 0:
        problems.append(f"chromium --dump-dom exited with {dom.returncode}")
    page = dom.stdout
    if "<h2>Leaderboard</h2>" not in page or "<table" not in page:
        problems.append("the rendered DOM has no leaderboard table")
    if n_images == 0 or len(re.findall(r"<img\b", page)) != n_images:
        problems.append(f"the rendered DOM does not hold the report's {n_images} image(s)")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("report", type=Path, help="the report.html to render")
    parser.add_argument("--screenshot", type=Path, default=None,
                        help="PNG to write (default: report.png beside the report)")  # fmt: skip
    parser.add_argument("--chromium", default=None, help="browser binary (default: chromium)")
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=4000)
    args = parser.parse_args(argv)
    if not args.report.is_file():
        print(f"render_report: error: no such file: {args.report}", file=sys.stderr)
        return 2
    chromium = args.chromium or find_chromium()
    if chromium is None:
        print(
            "render_report: error: chromium not found (apt-get install chromium)", file=sys.stderr
        )
        return 2
    screenshot = args.screenshot or args.report.with_name("report.png")
    problems = render(args.report, screenshot, chromium, args.width, args.height)
    for problem in problems:
        print(f"FAIL {problem}")
    if not problems:
        print(f"OK {args.report} rendered without failed requests; screenshot: {screenshot}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
