"""Notebook 06 in a real browser: JupyterLab + headless Chromium (Playwright).

What nbval cannot see: that the ipywidgets front end renders the latent explorer,
that moving a slider in the page re-renders the generated image through the
kernel, that the page logs no JavaScript error, and that the kit's plots stay
readable on JupyterLab's dark theme.

The test starts its own JupyterLab (free port, random token, temporary Jupyter
config/data/runtime/settings/workspace folders, a kernel running this Python,
``GANLAB_SOLUTIONS=1 GANLAB_QUICK=1``) on a temporary copy of ``notebooks/``, opens
``06_latent_space.ipynb``, runs all cells from the Run menu, moves the explorer's
first slider with the keyboard and checks that the picture changes. Then it
switches to "JupyterLab Dark" through the settings REST API and does it all again
on a fresh kernel and a pristine copy of the notebook. Screenshots of both themes
go to ``test-artifacts/`` at the repository root (look at them after changing the
plots or the explorer).

The same page checks run where students are: a failed check's hint, the set-up cell, and, in
classic Notebook 6.5 with ipywidgets 7.7.1 (Colab's generation, in the Colab-like environment of
``.ci/colab-env``), the explorer and the set-up cell; notebook 05's training progress bar (tqdm's
widget) is checked finished and full in both front ends.

Skipped, with the reason, where Chromium (``/usr/bin/chromium``, or the path in
``GANLAB_CHROMIUM``) or the ``playwright`` package is missing: ``.ci/install-browser``
installs Debian's chromium; playwright comes with the ``dev`` extra. Playwright
only drives the system Chromium here: never ``playwright install``.
"""

import base64
import io
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest

from ganlab import environment

pytestmark = [pytest.mark.browser, pytest.mark.slow]

REPO = Path(__file__).resolve().parent.parent
NOTEBOOK = "06_latent_space.ipynb"
TRAINING_NOTEBOOK = "05_training.ipynb"  # check 5.4 trains with a tqdm progress bar
ARTIFACTS = REPO / "test-artifacts"
CHROMIUM = Path(os.environ.get("GANLAB_CHROMIUM", "/usr/bin/chromium"))
# What Chromium needs in a container without network, GPU or user namespaces. Playwright adds
# --headless itself, and gives the browser a fresh profile folder (see browser_context).
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]
VIEWPORT = {"width": 1280, "height": 900}

# Every wait is bounded, and all of them together by TOTAL_S (the JupyterLab tests take 90-200 s).
TOTAL_S = 360
SERVER_START_S = 60
SERVER_STOP_S = 15
LOAD_MS = 60_000  # JupyterLab's page load (2-5 s here)
KERNEL_MS = 60_000  # kernel start: imports torch (5-8 s here)
RUN_ALL_MS = 120_000  # notebook 06 with GANLAB_QUICK (4-12 s on 2 CPU cores)
REDRAW_MS = 30_000  # one generator call through the widget comm (< 1 s)
ACTION_MS = 15_000  # clicks, key presses, menu items

# Console errors that are neither the kit's nor a failure, as (regex on "<text> @ <url>", reason).
# Empty: the one known source of noise, the external "Open in Colab" badge image (fails to load
# without network), is served a local placeholder instead (see PLACEHOLDERS).
IGNORED_CONSOLE_ERRORS = [
    # Notebook 6.5's wheel ships MathJax 2 without its web fonts: MathJax asks for them, falls
    # back to an image-free font of its own and renders the formulas anyway.
    (r"/static/components/MathJax/fonts/", "Notebook 6.5 ships MathJax without its fonts"),
    (
        r"Access to font at 'about:blank'|ERR_FAILED @ about:blank",
        "MathJax 2's font probe in Notebook 6.5",
    ),
]

# Requests that leave 127.0.0.1: the test must not depend on the network (CI may have none). The
# notebooks' "Open in Colab" badge is an external image: it gets a local placeholder, so the page
# is the same with or without network. Anything else external is aborted, which logs a console
# error and fails the test: the kit's pages must not need the internet.
EXTERNAL = re.compile(r"^https?://(?!(127\.0\.0\.1|localhost)[:/])")
PLACEHOLDERS = {
    re.compile(
        r"^https://colab\.research\.google\.com/assets/colab-badge\.svg"
    ): '<svg xmlns="http://www.w3.org/2000/svg" width="117" height="20"><rect width="117" height="20" '
    'fill="#555"/><text x="6" y="14" fill="#fff" font-size="11">Open in Colab</text></svg>',
}

# JupyterLab settings of the test server (its own settings folder: the user's are untouched).
LAB_SETTINGS = {
    # No network: do not fetch Jupyter news or look for updates (toasts, failing requests).
    "@jupyterlab/apputils-extension:notification": {"fetchNews": "false", "checkForUpdates": False},
    # Render every cell (no windowing): screenshots show the whole notebook, waits see every prompt.
    "@jupyterlab/notebook-extension:tracker": {"windowingMode": "none"},
}

_deadline = [time.monotonic() + TOTAL_S]  # reset when the server fixture starts


def _ms(limit_ms):
    """``limit_ms``, cut to what is left of the test's overall budget (TOTAL_S)."""
    left = (_deadline[0] - time.monotonic()) * 1000
    if left <= 0:
        pytest.fail(f"the browser test ran past its overall budget of {TOTAL_S} s")
    return int(min(limit_ms, left))


# --------------------------------------------------------------------------------------------------
# Skips
# --------------------------------------------------------------------------------------------------


def _require_browser_tools():
    if not CHROMIUM.is_file():
        pytest.skip(
            f"Chromium not found at {CHROMIUM}: run .ci/install-browser (Debian's chromium) "
            "or set GANLAB_CHROMIUM to a Chromium binary"
        )
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        pytest.skip(
            "the playwright package is missing: pip install -e '.[dev]' "
            "(it drives the system Chromium; never run `playwright install`)"
        )


# --------------------------------------------------------------------------------------------------
# JupyterLab server
# --------------------------------------------------------------------------------------------------


def _free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Lab:
    """A JupyterLab server started by this test; ``url(path)`` adds the token."""

    def __init__(self, root, port, token, process, log_path):
        self.root, self.port, self.token, self.process, self.log_path = (
            root,
            port,
            token,
            process,
            log_path,
        )
        self.base = f"http://127.0.0.1:{port}"

    def url(self, path):
        return f"{self.base}/{path.lstrip('/')}?token={self.token}"

    def api(self, method, path, body=None, timeout=10):
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            self.base + path,
            data=data,
            method=method,
            headers={"Authorization": f"token {self.token}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=timeout) as response:
            text = response.read().decode()
            return json.loads(text) if text else None

    def log(self, tail=6000):
        try:
            return self.log_path.read_text(errors="replace")[-tail:]
        except OSError:
            return "(no server log)"

    def fresh_notebook(self):
        """End the notebook's kernels and put back a pristine copy of it (no outputs, no counts)."""
        for session in self.api("GET", "/api/sessions"):
            if session.get("path", "").endswith(NOTEBOOK):
                self.api("DELETE", f"/api/sessions/{session['id']}")
        shutil.copy2(REPO / "notebooks" / NOTEBOOK, self.root / NOTEBOOK)


def _write_lab_config(home):
    """Temp Jupyter folders, a kernelspec for this Python, and the test's JupyterLab settings."""
    dirs = {
        name: home / name
        for name in ("config", "data", "runtime", "settings", "workspaces", "ipython", "mpl")
    }
    for path in dirs.values():
        path.mkdir(parents=True)
    kernel = dirs["data"] / "kernels" / "python3"  # shadows any other "python3" kernelspec
    kernel.mkdir(parents=True)
    (kernel / "kernel.json").write_text(
        json.dumps(
            {
                "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                "display_name": "Python 3 (ipykernel)",
                "language": "python",
                "metadata": {"debugger": True},
            }
        )
    )
    for plugin, values in LAB_SETTINGS.items():
        package, name = plugin.split(":")
        target = dirs["settings"] / package / f"{name}.jupyterlab-settings"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(values))
    return dirs


def _start_server(what, command, cwd, env, log_path, root, port, token):
    """Start a Jupyter server in its own session (its kernels end with it); wait until it answers."""
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        command = [*command, "--allow-root"]  # containers and CI runners often run as root
    with open(log_path, "wb") as log_file:
        process = subprocess.Popen(
            command,
            cwd=cwd,
            env=env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    server = Lab(root, port, token, process, log_path)
    deadline = time.monotonic() + SERVER_START_S
    while True:
        if process.poll() is not None:
            _stop(server)
            pytest.fail(
                f"{what} exited with {process.returncode} before answering:\n{server.log()}"
            )
        try:
            server.api("GET", "/api/status", timeout=2)
            return server
        except (urllib.error.URLError, OSError):
            if time.monotonic() > deadline:
                _stop(server)
                pytest.fail(f"{what} did not answer within {SERVER_START_S} s:\n{server.log()}")
            time.sleep(0.3)


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    _require_browser_tools()
    _deadline[0] = time.monotonic() + TOTAL_S
    home = tmp_path_factory.mktemp("jupyterlab")
    root = home / "notebooks"
    shutil.copytree(
        REPO / "notebooks", root, ignore=shutil.ignore_patterns(".ipynb_checkpoints", "runs")
    )
    dirs = _write_lab_config(home)
    port, token = _free_port(), uuid.uuid4().hex
    # Nothing of the caller's Jupyter/IPython/matplotlib set-up (conftest sets MPLBACKEND=Agg,
    # which would hide every inline plot).
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("JUPYTER", "JPY_", "IPYTHON", "MPL", "PYTEST"))
    }
    env.update(
        JUPYTER_CONFIG_DIR=str(dirs["config"]),
        JUPYTER_DATA_DIR=str(dirs["data"]),
        JUPYTER_RUNTIME_DIR=str(dirs["runtime"]),
        JUPYTERLAB_SETTINGS_DIR=str(dirs["settings"]),
        JUPYTERLAB_WORKSPACES_DIR=str(dirs["workspaces"]),
        IPYTHONDIR=str(dirs["ipython"]),
        MPLCONFIGDIR=str(dirs["mpl"]),
        MPLBACKEND="module://matplotlib_inline.backend_inline",
        PYTHONDONTWRITEBYTECODE="1",
        # Every cell works (reference solutions), training stays short, runs stay in the temp folder.
        GANLAB_SOLUTIONS="1",
        GANLAB_QUICK="1",
        GANLAB_RUNS_DIR=str(home / "runs"),
        PATH=os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]),
    )
    command = [
        sys.executable,
        "-m",
        "jupyterlab",
        "--no-browser",
        "--ip=127.0.0.1",
        f"--port={port}",
        "--ServerApp.port_retries=0",
        f"--IdentityProvider.token={token}",
        f"--ServerApp.root_dir={root}",
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
    ]
    server = _start_server(
        "JupyterLab", command, root, env, home / "jupyterlab.log", root, port, token
    )
    try:
        yield server
    finally:
        _stop(server)


def _stop(server):
    """Shut the server down (kernels first), then make sure its whole process group is gone."""
    process = server.process
    if process.poll() is None:
        try:
            server.api("POST", "/api/shutdown", timeout=5)
        except Exception:  # noqa: BLE001 -- it may be going down already; signals follow
            pass
        try:
            process.wait(SERVER_STOP_S)
        except subprocess.TimeoutExpired:
            process.terminate()
            try:
                process.wait(5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)
    try:  # kernels that outlived the server (same process group, started by this test)
        os.killpg(process.pid, signal.SIGKILL)
    except OSError:
        pass


# --------------------------------------------------------------------------------------------------
# Browser
# --------------------------------------------------------------------------------------------------


def _offline(route):
    for pattern, svg in PLACEHOLDERS.items():
        if pattern.match(route.request.url):
            return route.fulfill(status=200, content_type="image/svg+xml", body=svg)
    return route.abort()


@pytest.fixture(scope="module")
def browser_context(lab, tmp_path_factory):
    from playwright.sync_api import sync_playwright

    profile = tmp_path_factory.mktemp("chromium-profile")  # a fresh, empty profile
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(profile),
            executable_path=str(CHROMIUM),
            headless=True,
            args=CHROMIUM_ARGS,
            viewport=VIEWPORT,
            device_scale_factor=1,
            timeout=_ms(60_000),
        )
        try:
            context.set_default_timeout(ACTION_MS)
            context.route(EXTERNAL, _offline)
            yield context
        finally:
            context.close()


class PageErrors:
    """Console errors and uncaught exceptions of a page, minus the documented noise."""

    def __init__(self, page):
        self.errors, self.ignored = [], []
        page.on("console", self._console)
        page.on("pageerror", lambda error: self.errors.append(f"uncaught: {error}"))

    def _console(self, message):
        if message.type != "error":
            return
        location = message.location or {}
        text = f"{message.text} @ {location.get('url', '?')}:{location.get('lineNumber', '?')}"
        for pattern, reason in IGNORED_CONSOLE_ERRORS:
            if re.search(pattern, text):
                self.ignored.append(f"{text} (ignored: {reason})")
                return
        self.errors.append(f"console.error: {text}")


PANEL = ".jp-NotebookPanel:not(.lm-mod-hidden)"


def _open_notebook(context, lab):
    page = context.new_page()
    errors = PageErrors(page)
    page.on("dialog", lambda dialog: dialog.accept())  # e.g. "leave the page?" on close
    page.goto(lab.url(f"lab/tree/{NOTEBOOK}"), timeout=_ms(LOAD_MS), wait_until="domcontentloaded")
    page.locator(f"{PANEL} .jp-Cell").first.wait_for(state="visible", timeout=_ms(LOAD_MS))
    _wait_kernel_session(lab)
    _wait_kernel_idle(page, KERNEL_MS)
    return page, errors


def _wait_kernel_session(lab, notebook=NOTEBOOK):
    """The server's view: the notebook has a session whose kernel started and is idle."""
    deadline = time.monotonic() + _ms(KERNEL_MS) / 1000
    while True:
        sessions = lab.api("GET", "/api/sessions")
        states = [
            s["kernel"]["execution_state"]
            for s in sessions
            if s.get("path", "").endswith(notebook) and s.get("kernel")
        ]
        if "idle" in states:
            return
        if time.monotonic() > deadline:
            pytest.fail(
                f"no idle kernel for {notebook} in time (sessions: {sessions}):\n{lab.log()}"
            )
        time.sleep(0.3)


def _wait_kernel_idle(page, limit_ms):
    """The notebook toolbar's kernel indicator says idle (started, and nothing queued)."""
    page.locator(f"{PANEL} .jp-Notebook-ExecutionIndicator[data-status='idle']").wait_for(
        state="attached", timeout=_ms(limit_ms)
    )


def _run_all_cells(page):
    """Run → Run All Cells; wait until every code cell has an execution count, or a cell failed."""
    page.locator(".lm-MenuBar-item", has_text=re.compile(r"^\s*Run\s*$")).click()
    # "Run All Cells" is runmenu:run-all in JupyterLab 4 (notebook:run-all-cells: the notebook's own).
    page.locator(
        ".lm-Menu-item[data-command='runmenu:run-all'], "
        ".lm-Menu-item[data-command='notebook:run-all-cells']"
    ).first.click()
    # After a failing cell JupyterLab skips the rest: stop waiting at the first traceback.
    page.wait_for_function(
        """(panelSelector) => {
            const panel = document.querySelector(panelSelector);
            const prompts = [...panel.querySelectorAll('.jp-CodeCell .jp-InputArea-prompt')];
            const failed = [...panel.querySelectorAll(
                '.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]')]
                .some(el => el.textContent.includes('Traceback'));
            return failed || (prompts.length > 0 && prompts.every(p => /\\[\\d+\\]/.test(p.textContent)));
        }""",
        arg=PANEL,
        timeout=_ms(RUN_ALL_MS),
        polling=250,
    )
    _wait_kernel_idle(page, RUN_ALL_MS)


def _cell_errors(page):
    """Tracebacks in the output areas: with the reference solutions every cell must run cleanly."""
    texts = page.locator(
        f"{PANEL} .jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']"
    ).all_inner_texts()
    return [t for t in texts if "Traceback" in t or re.search(r"^\w*(Error|Exception)\b", t, re.M)]


def _image_state(page, image):
    """(src, sha256 of the bytes shown). widgets.Image shows blob: URLs, a new one on every update
    (the old one is revoked): read src and its bytes in one go, again if an update came between."""
    return tuple(
        page.evaluate(
            """async (img) => {
            for (let attempt = 0; ; attempt++) {
                const src = img.src;
                try {
                    const bytes = new Uint8Array(await (await fetch(src)).arrayBuffer());
                    const hash = await crypto.subtle.digest('SHA-256', bytes);
                    return [src, [...new Uint8Array(hash)].map(b => b.toString(16).padStart(2, '0')).join('')];
                } catch (err) {
                    if (attempt >= 3 || img.src === src) throw err;
                }
            }
        }""",
            image.element_handle(),
        )
    )


def _exercise_explorer(page):
    """Wait for the explorer's picture, move slider 1 with the keyboard; (before, after, readout)."""
    explorer = page.locator(f"{PANEL} .widget-hbox:has(img.ganlab-explorer-image)").last
    image = explorer.locator("img.ganlab-explorer-image")
    image.wait_for(state="visible", timeout=_ms(REDRAW_MS))
    page.wait_for_function(
        "(img) => img.src && img.complete && img.naturalWidth > 0",
        arg=image.element_handle(),
        timeout=_ms(REDRAW_MS),
    )
    before = _image_state(page, image)
    explorer.scroll_into_view_if_needed()
    slider = explorer.locator(".widget-slider").first
    handle = slider.locator(".noUi-handle").first
    handle.focus()
    for _ in range(10):  # step 0.1: direction 1 goes from 0.00 to 1.00
        handle.press("ArrowRight")
    readout = slider.locator(".widget-readout")
    page.wait_for_function(
        "(el) => el.textContent.trim() === '1.00'",
        arg=readout.element_handle(),
        timeout=_ms(ACTION_MS),
    )
    page.wait_for_function(
        "([img, old]) => img.src && img.src !== old && img.complete && img.naturalWidth > 0",
        arg=[image.element_handle(), before[0]],
        timeout=_ms(REDRAW_MS),
    )
    # Ten slide events went to the kernel: let it finish them, then read the final picture.
    _wait_kernel_idle(page, REDRAW_MS)
    page.wait_for_timeout(300)
    after = _image_state(page, image)
    return before, after, readout.inner_text().strip()


def _screenshot(page, name):
    """The page with the whole notebook in view (the viewport grows to fit it, capped)."""
    to_top = """(panelSelector) => {
        const panel = document.querySelector(panelSelector);
        const scroller = panel.querySelector('.jp-WindowedPanel-outer') || panel.querySelector('.jp-Notebook');
        scroller.scrollTop = 0;
        const cells = panel.querySelectorAll('.jp-Cell');
        const last = cells[cells.length - 1].getBoundingClientRect().bottom;
        return last + (window.innerHeight - scroller.getBoundingClientRect().bottom);
    }"""
    height = page.evaluate(to_top, PANEL)
    page.set_viewport_size({"width": VIEWPORT["width"], "height": min(8000, int(height) + 40)})
    page.wait_for_timeout(500)  # relayout
    page.evaluate(to_top, PANEL)
    page.wait_for_timeout(200)
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"browser-06_latent_space-{name}.png"
    page.screenshot(path=str(path))
    print(f"screenshot ({name} theme): {path}")
    return path


def _plot_images(page):
    """[(box x, y, w, h on the page, PNG bytes)] of the notebook's image outputs (matplotlib figures)."""
    found = page.evaluate(
        """(panelSelector) => [...document.querySelectorAll(
            panelSelector + ' .jp-OutputArea-output[data-mime-type="image/png"] img')]
        .map(img => { const r = img.getBoundingClientRect(); return [[r.x, r.y, r.width, r.height], img.src]; })""",
        PANEL,
    )
    return [
        (box, base64.b64decode(src.split(",", 1)[1]))
        for box, src in found
        if src.startswith("data:image/png")
    ]


def _frame(width, height, inset=1, step=3):
    """Pixel positions on a thin frame just inside a width x height box (the figure's margin)."""
    right, bottom = width - 1 - inset, height - 1 - inset
    for x in range(inset, right + 1, step):
        yield x, inset
        yield x, bottom
    for y in range(inset, bottom + 1, step):
        yield inset, y
        yield right, y


def _unreadable_plots(plots, screenshot):
    """Plots whose margin is not opaque and light, in the PNG itself or as shown in the screenshot.

    The figures are saved with ``bbox_inches="tight"`` and keep a ~0.1 inch margin of figure
    background around the axes and titles. Readable black text needs that margin opaque and
    light: a transparent figure shows the page through it (black on dark grey in JupyterLab Dark).
    """
    from PIL import Image

    shot = Image.open(screenshot).convert("L")
    problems = []
    for (x, y, w, h), png in plots:
        picture = Image.open(io.BytesIO(png)).convert("RGBA")
        alpha = min(picture.getpixel(p)[3] for p in _frame(*picture.size))
        light = sorted(sum(picture.getpixel(p)[:3]) / 3 for p in _frame(*picture.size))
        shown = sorted(
            shot.getpixel((int(x) + px, int(y) + py)) for px, py in _frame(int(w), int(h), inset=2)
        )
        # 2nd percentile: a legend or a tick label may touch the margin here and there.
        if alpha < 255 or light[len(light) // 50] < 200 or shown[len(shown) // 50] < 200:
            problems.append(
                f"plot at x={int(x)} y={int(y)} ({int(w)}x{int(h)}): PNG margin alpha >= {alpha}, "
                f"luminance ~{light[len(light) // 50]:.0f}; on screen ~{shown[len(shown) // 50]}"
            )
    return problems


def _check_notebook_in_theme(context, lab, theme_name, label):
    started = time.monotonic()
    failure = ARTIFACTS / f"browser-06_latent_space-{label}-failure.png"
    failure.unlink(missing_ok=True)  # from an earlier failed run
    page, errors = _open_notebook(context, lab)
    try:
        name, _ = page.evaluate(
            "() => [document.body.dataset.jpThemeName, document.body.dataset.jpThemeLight]"
        )
        assert name == theme_name, f"expected the {theme_name!r} theme, the page shows {name!r}"
        loaded = time.monotonic()
        _run_all_cells(page)
        ran = time.monotonic()
        problems = _cell_errors(page)
        assert not problems, f"cells of {NOTEBOOK} failed in JupyterLab:\n" + "\n---\n".join(
            problems
        )

        (src0, bytes0), (src1, bytes1), readout = _exercise_explorer(page)
        assert src0.startswith(("blob:", "data:image/png")), (
            f"the explorer shows no PNG: src={src0[:80]!r}"
        )
        assert readout == "1.00", (
            f"slider 'direction 1' should read 1.00 after ten arrow presses, reads {readout}"
        )
        assert src1 != src0, "the explorer's image src did not change after moving a slider"
        assert bytes1 != bytes0, "the explorer's image was redrawn with the very same picture"
        moved = time.monotonic()

        shot = _screenshot(page, label)
        plots = _plot_images(page)
        assert len(plots) >= 4, (
            f"expected the notebook's 4 plots as PNG images, found {len(plots)}; see {shot}"
        )
        unreadable = _unreadable_plots(plots, shot)
        assert not unreadable, (
            f"{theme_name}: plots without an opaque light background (see {shot}):\n"
            + "\n".join(unreadable)
        )
        print(
            f"{theme_name}: page load + kernel {loaded - started:.1f} s, run all {ran - loaded:.1f} s, "
            f"slider -> new picture {moved - ran:.1f} s"
        )
        page.wait_for_timeout(300)  # late errors from the redraws
        assert not errors.errors, f"JavaScript errors in the page ({theme_name}):\n" + "\n".join(
            errors.errors
        )
        return errors
    except Exception:
        ARTIFACTS.mkdir(exist_ok=True)
        try:
            page.screenshot(path=str(failure))
            print(f"screenshot at the failure ({label} theme): {failure}")
        except Exception as err:  # noqa: BLE001 -- the page may be gone; the first error matters
            print(f"no failure screenshot: {err}")
        print("JavaScript errors so far:", *(errors.errors or ["none"]), sep="\n  ")
        raise
    finally:
        page.close()


def test_latent_explorer_renders_and_reacts_in_light_and_dark_theme(lab, browser_context):
    start = time.monotonic()
    light = _check_notebook_in_theme(browser_context, lab, "JupyterLab Light", "light")
    # What Settings → Theme does, through the settings REST API; the next page load uses it.
    lab.api(
        "PUT",
        "/lab/api/settings/@jupyterlab/apputils-extension:themes",
        {"raw": json.dumps({"theme": "JupyterLab Dark"})},
    )
    lab.fresh_notebook()  # a new kernel and no outputs: the dark run cannot see the light run's
    dark = _check_notebook_in_theme(browser_context, lab, "JupyterLab Dark", "dark")
    for note in light.ignored + dark.ignored:
        print("ignored:", note)
    print(f"both themes: {time.monotonic() - start:.1f} s")


# --------------------------------------------------------------------------------------------------
# What a student sees (issue 9): a failed check, the set-up cell, the explorer on Colab's ipywidgets
# --------------------------------------------------------------------------------------------------

WRONG_COUNT = "def count_parameters(model):\n    return sum(p.numel() for p in model.parameters())"


def _notebook_with(lab, name, source_by_id, new_name):
    """A copy of notebook ``name`` in the server's folder with some cells' sources replaced."""
    import nbformat

    nb = nbformat.read(str(REPO / "notebooks" / name), as_version=4)
    for cell in nb.cells:
        if cell.get("id") in source_by_id:
            cell.source = source_by_id[cell.get("id")]
    nbformat.write(nb, str(lab.root / new_name))
    return new_name


def _open(context, lab, path):
    page = context.new_page()
    page.on("dialog", lambda dialog: dialog.accept())
    page.goto(lab.url(f"lab/tree/{path}"), timeout=_ms(LOAD_MS), wait_until="domcontentloaded")
    page.locator(f"{PANEL} .jp-Cell").first.wait_for(state="visible", timeout=_ms(LOAD_MS))
    _wait_kernel_session(lab, path)
    _wait_kernel_idle(page, KERNEL_MS)
    return page


def _cell_screenshot(page, selector, name):
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"browser-{name}.png"
    target = page.locator(selector).first
    target.scroll_into_view_if_needed()
    page.wait_for_timeout(300)
    target.screenshot(path=str(path))
    print(f"screenshot: {path}")
    return path


def test_a_failed_check_shows_its_hint_first_in_a_few_lines(lab, browser_context):
    # Exercise 0.1 answered wrongly: frozen parameters counted too.
    path = _notebook_with(
        lab, "00_setup.ipynb", {"ex-0-1": WRONG_COUNT}, "00_setup-wrong-answer.ipynb"
    )
    page = _open(browser_context, lab, path)
    try:
        page.locator(".lm-MenuBar-item", has_text=re.compile(r"^\s*Run\s*$")).click()
        page.locator(
            ".lm-Menu-item[data-command='runmenu:run-all'], "
            ".lm-Menu-item[data-command='notebook:run-all-cells']"
        ).first.click()
        error = page.locator(
            f"{PANEL} .jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']"
        ).first
        error.wait_for(state="visible", timeout=_ms(RUN_ALL_MS))
        text = error.inner_text()
        cell = f"{PANEL} .jp-CodeCell:has(.jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr'])"
        _cell_screenshot(page, cell, "00_setup-failed-check")
        lines = [line for line in text.splitlines() if line.strip()]
        assert lines[0].startswith("\u2718 Check failed:"), f"the hint is not first:\n{text}"
        assert "frozen" in text or "requires_grad" in text, f"the hint names no cause:\n{text}"
        assert len(lines) <= 8, f"{len(lines)} lines under a failed check:\n{text}"
        assert "Traceback" not in text and "fail_unless" not in text, text
    except Exception:
        page.screenshot(path=str(ARTIFACTS / "browser-00_setup-failed-check-failure.png"))
        raise
    finally:
        page.close()


def test_the_set_up_cell_in_jupyterlab(lab, browser_context):
    page = _open(browser_context, lab, "00_setup.ipynb")
    try:
        # Collapsed (jupyter.source_hidden): the notebook's first idea is what shows first.
        setup = f"{PANEL} .jp-CodeCell:has(.jp-InputPlaceholder)"
        _cell_screenshot(page, f"{PANEL} .jp-Notebook", "00_setup-set-up-cell-collapsed-jupyterlab")
        first_code = page.locator(f"{PANEL} .jp-CodeCell").first
        assert first_code.locator(".jp-InputPlaceholder").count() == 1, (
            "the set-up cell's code is not collapsed in JupyterLab"
        )
        page.locator(f"{setup} .jp-InputPlaceholder").first.click()  # what a curious student does
        first_code.locator(".cm-content").wait_for(state="visible", timeout=_ms(ACTION_MS))
        _cell_screenshot(page, f"{PANEL} .jp-CodeCell >> nth=0", "00_setup-set-up-cell-jupyterlab")
        text = first_code.inner_text()
        assert "#@title Set-up" in text and "finish_setup" in text
    finally:
        page.close()


# Classic Notebook 6.5 with ipywidgets 7.7.1, Colab's front-end generation, in the Colab-like
# environment (.ci/colab-env), the kit installed by its own set-up cell on a stand-in Colab.
COLAB_ENV = Path(os.environ.get("GANLAB_COLAB_ENV") or REPO / ".venv-colab")


@pytest.fixture(scope="module")
def classic(tmp_path_factory):
    _require_browser_tools()
    if not (COLAB_ENV / ".complete").is_file():
        pytest.skip(f"no Colab-like environment at {COLAB_ENV}: build it with .ci/colab-env")
    from runtime_env import held

    # test_colab_runtime.py uninstalls and reinstalls the kit there too; the clock starts after.
    with held(COLAB_ENV):
        yield from _classic_server(tmp_path_factory.mktemp("classic"))


def _classic_server(home):
    import nbformat

    from ganlab import colab

    from colab_standin import cell_for, course_origin, write_stand_in

    _deadline[0] = time.monotonic() + TOTAL_S
    origin = course_origin(home / "origin")
    write_stand_in(home / "standin")
    root, content = home / "notebooks", home / "content"
    root.mkdir()
    content.mkdir()
    for name in (NOTEBOOK, TRAINING_NOTEBOOK):
        nb = nbformat.read(str(REPO / "notebooks" / name), as_version=4)
        setup = next(c for c in nb.cells if c.get("id") == "colab-setup")
        setup.source = cell_for(colab.setup_cell_source(), origin, content)
        nbformat.write(nb, str(root / name))
    python = COLAB_ENV / "bin" / "python"
    wipe = [str(python), "-m", "pip", "uninstall", "-y", "-q", "ganlab", "torchmetrics"]
    subprocess.run(wipe + ["lightning-utilities"], capture_output=True)  # a new runtime
    port, token = _free_port(), uuid.uuid4().hex
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JUPYTER", "MPL", "PYTEST"))}
    env.update(
        PYTHONPATH=str(home / "standin"),
        COLAB_STANDIN_LOG=str(home / "colab.log"),
        COLAB_STANDIN_DRIVE=str(home / "drive"),
        GANLAB_SOLUTIONS="1",
        GANLAB_QUICK="1",
        PIP_NO_INDEX="1",
        PIP_FIND_LINKS=str(COLAB_ENV / "wheelhouse"),
        PYDEVD_DISABLE_FILE_VALIDATION="1",
        JUPYTER_CONFIG_DIR=str(home / "config"),
        JUPYTER_RUNTIME_DIR=str(home / "runtime"),
        MPLBACKEND="module://matplotlib_inline.backend_inline",
        PATH=f"{COLAB_ENV / 'bin'}:{os.environ['PATH']}",
    )
    command = [
        str(python),
        "-m",
        "notebook",
        "--no-browser",
        "--ip=127.0.0.1",
        f"--port={port}",
        "--NotebookApp.port_retries=0",
        f"--NotebookApp.token={token}",
        f"--NotebookApp.notebook_dir={root}",
    ]
    server = _start_server(
        "Notebook 6.5", command, content, env, home / "notebook.log", root, port, token
    )
    try:
        yield server
    finally:
        _stop(server)
        subprocess.run(wipe + ["lightning-utilities"], capture_output=True)


def _run_all_in_classic(page, classic, name):
    """Open notebook ``name`` in Notebook 6.5, Run All once the widget manager is ready, wait."""
    page.goto(classic.url(f"notebooks/{name}"), timeout=_ms(LOAD_MS))
    page.wait_for_function(
        "() => window.Jupyter && Jupyter.notebook && Jupyter.notebook.kernel"
        " && Jupyter.notebook.kernel.is_connected()",
        timeout=_ms(KERNEL_MS),
    )
    # ipywidgets 7's classic widget manager, once created, asks the kernel which widgets exist
    # (comm_info) and then re-renders every widget output; a shell request waits behind queued
    # cells, so "Run All" sent before that answer gets the explorer's view wiped by the
    # re-render (its output keeps model_id ''). A person clicks Run All later than that; so
    # does the test: its own comm_info is answered after the manager's.
    page.wait_for_function(
        "() => Jupyter.notebook.kernel.widget_manager !== undefined", timeout=_ms(KERNEL_MS)
    )
    page.evaluate(
        """() => new Promise((resolve) => Jupyter.notebook.kernel.comm_info(
            'jupyter.widget', () => setTimeout(resolve, 500)))"""
    )
    page.evaluate("() => Jupyter.notebook.execute_all_cells()")
    page.wait_for_function(
        """() => {
            const cells = Jupyter.notebook.get_cells().filter(c => c.cell_type === 'code');
            const failed = document.querySelector('.output_error');
            return failed || (cells.every(c => c.input_prompt_number > 0)
                && document.querySelector('#kernel_indicator_icon.kernel_idle_icon'));
        }""",
        timeout=_ms(RUN_ALL_MS + 120_000),  # the set-up cell installs the kit first
        polling=500,
    )
    failed = page.locator(".output_error").all_inner_texts()
    assert not failed, "cells failed in Notebook 6.5:\n" + "\n---\n".join(failed)


def test_explorer_and_set_up_cell_in_classic_notebook_with_ipywidgets_7(classic, browser_context):
    page = browser_context.new_page()
    errors = PageErrors(page)
    page.on("dialog", lambda dialog: dialog.accept())
    try:
        _run_all_in_classic(page, classic, NOTEBOOK)
        versions = page.evaluate("() => Jupyter.version")
        setup = _cell_screenshot(
            page, ".code_cell:has-text('#@title Set-up')", "00_setup-cell-classic-notebook"
        )
        image = page.locator("img.ganlab-explorer-image").first
        try:
            image.wait_for(state="visible", timeout=_ms(REDRAW_MS))
        except Exception as err:  # noqa: BLE001 -- say what the notebook holds instead
            model_id = page.evaluate(
                "() => Jupyter.notebook.get_cells().slice(-1)[0].output_area.outputs[0]"
                ".data['application/vnd.jupyter.widget-view+json'].model_id"
            )
            raise AssertionError(
                f"Notebook 6.5 shows no explorer; its output holds widget-view model_id {model_id!r}"
                " ('' : the view was removed)"
            ) from err
        page.wait_for_function(
            "(img) => img.src && img.complete && img.naturalWidth > 0",
            arg=image.element_handle(),
            timeout=_ms(REDRAW_MS),
        )
        before = image.get_attribute("src")
        handle = page.locator(".widget-hslider .ui-slider-handle").first
        handle.scroll_into_view_if_needed()
        handle.focus()
        for _ in range(10):
            handle.press("ArrowRight")
        page.wait_for_function(
            "([img, old]) => img.src && img.src !== old && img.complete && img.naturalWidth > 0",
            arg=[image.element_handle(), before],
            timeout=_ms(REDRAW_MS),
        )
        page.wait_for_timeout(1000)
        shot = _cell_screenshot(
            page, ".code_cell:has(img.ganlab-explorer-image)", "06_explorer-ipywidgets7-classic"
        )
        print("nbclassic", versions, "screenshots:", setup, shot)
        assert not errors.errors, "JavaScript errors:\n" + "\n".join(errors.errors)
    except Exception:
        cell = page.locator(".code_cell").last
        cell.scroll_into_view_if_needed()
        page.screenshot(path=str(ARTIFACTS / "browser-06-classic-failure.png"))
        print(
            "explorer cell outputs:",
            page.evaluate(
                "() => JSON.stringify(Jupyter.notebook.get_cells().slice(-1)[0].output_area.outputs)"
                ".slice(0, 1500)"
            ),
        )
        print("JavaScript errors so far:", *(errors.errors or ["none"]), sep="\n  ")
        raise
    finally:
        page.close()


# --------------------------------------------------------------------------------------------------
# The training progress bar (tqdm's widget) with ipywidgets 8 in JupyterLab and 7.7.1 in Notebook 6.5
# --------------------------------------------------------------------------------------------------


def _progress_bar(page, cell_selector):
    """The tqdm widget in that cell: (its text, the filled fraction of its bar as drawn)."""
    bar = page.locator(cell_selector).first.locator(".widget-hprogress").first
    bar.wait_for(state="visible", timeout=_ms(REDRAW_MS))
    text = bar.locator("xpath=..").inner_text()  # the HBox: description, bar, "n/total [time]"
    filled = bar.evaluate(
        """(el) => {
            const fill = el.querySelector('.progress-bar');
            return fill.getBoundingClientRect().width / fill.parentElement.getBoundingClientRect().width;
        }"""
    )
    return " ".join(text.split()), filled


def _assert_finished_bar(page, cell, front_end):
    text, filled = _progress_bar(page, cell)
    shot = _cell_screenshot(page, cell, f"05_progress-bar-{front_end}")
    print("progress bar:", text, f"{filled:.0%}", shot)
    assert f"{environment.QUICK_STEPS}/{environment.QUICK_STEPS}" in text, (
        f"the bar does not show the finished count: {text!r}"
    )
    assert filled > 0.99, f"the bar is drawn {filled:.0%} full after the run: {text!r}"


def test_training_progress_bar_in_jupyterlab_with_ipywidgets_8(lab, browser_context):
    path = _notebook_with(lab, TRAINING_NOTEBOOK, {}, TRAINING_NOTEBOOK)
    page = _open(browser_context, lab, path)
    try:
        _run_all_cells(page)
        assert not _cell_errors(page), "cells failed:\n" + "\n---\n".join(_cell_errors(page))
        _assert_finished_bar(
            page, f"{PANEL} .jp-CodeCell:has-text('check_training_run(')", "jupyterlab"
        )
    finally:
        page.close()


def test_training_progress_bar_in_classic_notebook_with_ipywidgets_7(classic, browser_context):
    page = browser_context.new_page()
    page.on("dialog", lambda dialog: dialog.accept())
    try:
        _run_all_in_classic(page, classic, TRAINING_NOTEBOOK)
        _assert_finished_bar(page, ".code_cell:has-text('check_training_run(')", "classic")
    finally:
        page.close()
