"""Headless Chromium for the HTML report test: Debian's `chromium` (`.ci/run` installs it with
apt), run with a fresh profile and everything that would reach the network switched off.

`open_every_result` clicks through Snakemake's report as a reader would: for every file the
report holds, Results -> its category -> its subcategory -> its row, then records whether the
page shows the file (a PNG as an image) with its caption. The clicks are a script appended to a
copy of the report; Chromium's --dump-dom returns the page with the script's findings.

No wall-clock limit by default (as for the workflow runs); MMTRACE_TEST_TIMEOUT bounds it."""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--no-first-run",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--virtual-time-budget=600000",  # let the report's scripts and clicks finish (virtual time)
]


def chromium_or_skip() -> str:
    for name in ("chromium", "chromium-browser"):
        path = shutil.which(name)
        if path:
            return path
    pytest.skip("no chromium: apt-get install chromium (.ci/run installs it)")


def _run(browser: str, profile: Path, *args: str) -> subprocess.CompletedProcess:
    profile.mkdir(parents=True, exist_ok=True)
    limit = float(os.environ.get("MMTRACE_TEST_TIMEOUT", "0")) or None
    return subprocess.run(
        [browser, *FLAGS, f"--user-data-dir={profile}", *args],
        capture_output=True,
        text=True,
        timeout=limit,
    )


def render(browser: str, page: Path, profile: Path) -> str:
    """The DOM of `page` (a local file) after its scripts ran."""
    proc = _run(browser, profile, "--dump-dom", page.resolve().as_uri())
    assert proc.returncode == 0 and proc.stdout.strip(), proc.stderr[-3000:]
    return proc.stdout


def screenshot(browser: str, page: Path, profile: Path, out: Path, size: str = "1280,900") -> Path:
    proc = _run(
        browser,
        profile,
        f"--screenshot={out.resolve()}",
        f"--window-size={size}",
        page.resolve().as_uri(),
    )
    assert proc.returncode == 0 and out.is_file(), proc.stderr[-3000:]
    return out


# Clicks through the report app (snakemake/report/html_reporter) by visible text only; reads the
# app's own `results` and `categories` to know what should be there.
PROBE = """
<script>
window.addEventListener("load", () => {
  const norm = (t) => (t || "").replace(/\\s+/g, " ").trim();
  const click = (text) => {
    const el = [...document.querySelectorAll("body *")].reverse()
      .find((x) => norm(x.textContent) === text && x.offsetParent !== null);
    if (el) { el.click(); return true; }
    return false;
  };
  // a row's buttons (view, info), found anew each time: React re-renders the rows
  const rowButtons = (row) => {
    const tr = [...document.querySelectorAll("tr")].find((t) =>
      [...t.querySelectorAll("td")].some((td) => norm(td.textContent) === row));
    return tr ? [...tr.querySelectorAll("a")] : [];
  };
  const ONLY = __ONLY__;  // null: every result; a path: that one (left open, for a screenshot)
  const todo = [];
  for (const [cat, subs] of Object.entries(categories)) {
    for (const [sub, paths] of Object.entries(subs)) {
      for (const path of paths) {
        const pick = Object.keys(subs).length > 1;
        if (ONLY === null || path === ONLY) todo.push([cat, sub, pick, path]);
      }
    }
  }
  const found = {};
  const wait = (f) => setTimeout(f, 300);
  const next = (i) => {
    if (i >= todo.length) {
      const out = document.createElement("pre");
      out.id = "mmtrace-probe";
      out.textContent = JSON.stringify(found);
      document.body.appendChild(out);
      return;
    }
    const [cat, sub, pickSub, path] = todo[i];
    const r = results[path];
    const row = norm(r.labels ? (r.labels.figure || r.labels.table) : r.name);
    const caption = norm(r.caption.replace(/<[^>]+>/g, "")).slice(0, 60);
    const f = (found[path] = { category: cat, subcategory: sub, row: row });
    f.results = click("Results");
    wait(() => {
      f.clicked_category = click(cat);
      wait(() => {
        f.clicked_subcategory = pickSub ? click(sub) : true;
        wait(() => {
          const buttons = rowButtons(row);
          f.listed = buttons.length >= 2;  // the row, with its view and info buttons
          if (!f.listed) return next(i + 1);
          buttons[1].click();  // info: the caption
          wait(() => {
            f.caption = caption.length > 0 && norm(document.body.innerText).includes(caption);
            if (!r.mime_type.startsWith("image/")) {  // a table: the view button downloads it
              f.image = null;
              f.download = (buttons[0].getAttribute("href") || "").startsWith("data:");
              return next(i + 1);
            }
            rowButtons(row)[0].click();  // view: the image itself (the row was re-rendered)
            wait(() => {
              f.image = [...document.querySelectorAll("img")].some(
                (im) => im.src === r.data_uri && r.data_uri.startsWith("data:image/png"));
              next(i + 1);
            });
          });
        });
      });
    });
  };
  setTimeout(() => next(0), 500);
});
</script>
"""


def _probe_page(report: Path, only: str | None) -> Path:
    page = report.with_name(report.stem + ".probe.html")
    text = report.read_text(encoding="utf-8")
    end = text.rindex("</body>")
    page.write_text(text[:end] + PROBE.replace("__ONLY__", json.dumps(only)) + text[end:])
    return page


def screenshot_result(browser: str, report: Path, result: str, profile: Path, out: Path) -> Path:
    """A screenshot of the report with `result` (a path as the report names it) opened, its
    caption in the side panel: how docs/report.png was made."""
    return screenshot(browser, _probe_page(report, result), profile, out)


def open_every_result(browser: str, report: Path, profile: Path) -> dict[str, dict]:
    """report path -> what the reader saw (see PROBE): `listed` (its row, with the view and info
    buttons, in its category and subcategory), `caption` (the caption's first words shown by
    the info button), and for a figure `image` (the view button shows it as a decoded PNG), for
    a table `download` (the view button is a data: link)."""
    dom = render(browser, _probe_page(report, None), profile)
    m = re.search(r'<pre id="mmtrace-probe">(.*?)</pre>', dom, flags=re.S)
    assert m is not None, "the report's scripts did not finish (no probe output in the DOM)"
    return json.loads(html.unescape(m.group(1)))
