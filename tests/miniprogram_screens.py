"""What the mini-program's rendered pages look like on a 360-px phone: each state a scenario kept (rt.shot in
miniprogram_stub/test/wx-shim.js: the document WeChat's engine rendered, as HTML) is laid out by headless
Chromium with WeUI's stylesheet from miniprogram_npm/, the app's and the page's WXSS (rpx turned into px for
a 360-px-wide screen, as WeChat does), and a small stand-in for the built-in components' own styles. Each is
saved under test-output/screenshots/miniprogram/ and checked: nothing wider than the phone, WeUI's green on
the primary buttons, no text smaller than 14 px.

The built-in components' styles are an approximation (WeChat draws inputs and pickers natively); WeUI's
classes, which style almost everything here, are WeChat's own."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STUB = ROOT / "miniprogram_stub"
WEUI = STUB / "miniprogram_npm" / "weui-miniprogram" / "weui-wxss" / "dist" / "style" / "weui.wxss"
SCREENSHOT_DIR = ROOT / "test-output" / "screenshots" / "miniprogram"
PHONE_WIDTH = 360
WEUI_GREEN = "rgb(7, 193, 96)"
SMALLEST_TEXT_PX = 14

# The built-in components as blocks, inputs showing their value or placeholder, what is hidden hidden.
BUILTINS_CSS = """
body { margin: 0; }
wx-view, wx-label, wx-picker, wx-checkbox-group, wx-radio-group, wx-button, wx-input, wx-textarea { display: block; }
[hidden] { display: none !important; }
wx-checkbox, wx-radio { display: none; }
wx-input { min-height: 1.4em; overflow: hidden; white-space: nowrap; }
wx-textarea { min-height: 150px; white-space: pre-wrap; }
wx-input:not([value])::before, wx-textarea:not([value])::before { content: attr(placeholder); color: var(--weui-FG-2); }
wx-input[value]::before, wx-textarea[value]::before { content: attr(value); }
wx-input[password][value]::before { content: "••••••"; }
wx-button[loading]::before { content: "… "; }
"""


def wxss_to_css(wxss: str) -> str:
    """WXSS as a 360-px-wide WeChat applies it: rpx scaled to the screen (750 rpx = the width), `page` the body."""
    css = re.sub(r"@import[^;]+;", "", wxss)
    css = re.sub(
        r"(-?\d*\.?\d+)rpx",
        lambda m: f"{float(m.group(1)) * PHONE_WIDTH / 750:.2f}px",
        css,
    )
    return re.sub(r"(^|[\s,}])page(?=[\s,{])", r"\1body", css)


def stylesheet(route: str) -> str:
    """WeUI, the app's WXSS and the page's, in that order (as app.wxss imports WeUI first)."""
    parts = [BUILTINS_CSS, WEUI.read_text(encoding="utf-8")]
    parts += [(STUB / name).read_text(encoding="utf-8") for name in ("app.wxss", route + ".wxss")]
    return "\n".join(wxss_to_css(part) for part in parts)


@dataclass(frozen=True)
class Shot:
    """One state of one page as a scenario kept it."""

    name: str
    route: str
    html: str


def shots_in(folder: Path) -> list[Shot]:
    """The states a scenario kept in ``folder``, by name."""
    found = []
    for path in sorted(folder.glob("*.json")):
        data = json.loads(path.read_text(encoding="utf-8"))
        found.append(Shot(name=data["name"], route=data["route"], html=data["html"]))
    return found


MEASURE = """() => {
  const tooSmall = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    const text = node.textContent.trim();
    const el = node.parentElement;
    if (!text || !el.getClientRects().length) continue;
    const size = parseFloat(getComputedStyle(el).fontSize);
    if (size < SMALLEST_TEXT_PX) tooSmall.push(text + " (" + size + "px)");
  }
  const primaries = Array.from(document.querySelectorAll("wx-button.weui-btn_primary:not([disabled])"))
    .filter((b) => b.getClientRects().length)
    .map((b) => [b.textContent.trim(), getComputedStyle(b).backgroundColor]);
  return { width: document.scrollingElement.scrollWidth, tooSmall: tooSmall, primaries: primaries };
}""".replace("SMALLEST_TEXT_PX", str(SMALLEST_TEXT_PX))


def check_shots(page, folder: Path) -> list[str]:
    """Lay out each kept state in ``page`` (a 360-px Chromium page), save its screenshot, return what is wrong."""
    SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)
    problems = []
    for shot in shots_in(folder):
        page.set_content(
            '<!doctype html><html lang="zh-CN"><head><meta charset="utf-8">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<style>{stylesheet(shot.route)}</style></head><body>{shot.html}</body></html>"
        )
        page.screenshot(path=str(SCREENSHOT_DIR / f"{shot.name}.png"), full_page=True)
        seen = page.evaluate(MEASURE)
        if seen["width"] > PHONE_WIDTH:
            problems.append(f"{shot.name}: {seen['width']} px wide on a {PHONE_WIDTH}-px phone")
        if seen["tooSmall"]:
            problems.append(f"{shot.name}: text under {SMALLEST_TEXT_PX} px: {seen['tooSmall']}")
        for text, colour in seen["primaries"]:
            if colour != WEUI_GREEN:
                problems.append(f"{shot.name}: primary button {text!r} is {colour}, not WeUI's green")
    return problems


def main(folder: str, chromium: str) -> int:
    """Check the states kept in ``folder`` in a Chromium of its own; print the problems as JSON.

    Its own process: a test session holds at most one Playwright driver (the browser tests' one), and a second
    sync driver in the same thread refuses to start."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, headless=True, args=["--no-sandbox", "--disable-gpu"])
        try:
            page = browser.new_page(
                viewport={"width": PHONE_WIDTH, "height": 740}, device_scale_factor=2, is_mobile=True, locale="zh-CN"
            )
            print(json.dumps(check_shots(page, Path(folder)), ensure_ascii=False))
        finally:
            browser.close()
    return 0


if __name__ == "__main__":
    import sys

    raise SystemExit(main(sys.argv[1], sys.argv[2]))
