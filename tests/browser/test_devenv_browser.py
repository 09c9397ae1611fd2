"""A person opens a dev environment: headless Chromium at the URL dtrun printed, work done in the app,
and the work in the job's saved outputs after `dtrun stop`.

Each test saves a screenshot of the app under build/screenshots/ (or $DTRUN_SCREENSHOT_DIR); the one in
docs/ for the README is a copy of the lab's.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.browser.chromium import start_chromium, wait_until
from tests.browser.devenv import DevEnv, workflow_file
from tests.conftest import DtrunRunner

#: one worker builds the lab/notebook/code images once, for these tests and tests/integration/test_devenv.py
pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("devenv")]

ROOT = Path(__file__).resolve().parents[2]
#: One line, so no editor's auto-indent or bracket closing changes it; prints a marker to wait for.
CELL = ("import os; os.makedirs('out', exist_ok=True); "
        "open('out/hello.txt', 'w').write('hello from {app}'); print('wrote', 'out/hello.txt')")


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Any]:
    driver = start_chromium(tmp_path)
    yield driver
    driver.quit()


def screenshot(driver: Any, name: str) -> Path:
    folder = Path(os.environ.get("DTRUN_SCREENSHOT_DIR") or ROOT / "build" / "screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.png"
    assert driver.save_screenshot(str(path)), path
    return path


def saved_hello(dtrun: DtrunRunner, root: Path, job: dict[str, Any], target: Path) -> str:
    assert job["state"] == "STOPPED" and [a["path"] for a in job["artifacts"]] == ["out"], job
    got = dtrun("artifacts", job["id"], "--output", str(target), cwd=root)
    assert got.code == 0, got.output
    found = list(target.rglob("hello.txt"))
    assert found, got.output
    return found[0].read_text()


def click(find: Callable[[], Any], what: str, timeout: float = 60) -> Any:
    """Click the element `find` returns once it is there and takes clicks (a page still laying out
    refuses them); the element."""

    def clicked() -> Any:
        element = find()
        element.click()
        return element

    return wait_until(clicked, what, timeout)


def run_cell(driver: Any, code: str) -> None:
    """Type `code` into the notebook's first cell and run it (Shift+Enter); wait for its output.

    A cell run while the page is still connecting to its new kernel is skipped by the front end (the
    prompt stays `[ ]`, nothing is sent), even when the status already says idle; so the first cell is
    run again until the output appears, a few times at most (the code may safely run twice).
    """
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    wait_until(lambda: driver.find_elements(By.CSS_SELECTOR, ".jp-Notebook-ExecutionIndicator[data-status='idle']"),
               "the kernel", timeout=120)
    first_cell = ".jp-Notebook .jp-Cell .cm-content"
    editor = click(lambda: driver.find_element(By.CSS_SELECTOR, first_cell), "the notebook's first cell")
    editor.send_keys(code)
    for attempt in range(4):
        if attempt:
            click(lambda: driver.find_element(By.CSS_SELECTOR, first_cell), "the notebook's first cell")
        driver.switch_to.active_element.send_keys(Keys.SHIFT, Keys.ENTER)
        try:
            wait_until(lambda: "wrote out/hello.txt" in driver.find_element(By.CSS_SELECTOR, ".jp-OutputArea").text,
                       "the cell's output", timeout=30)
            return
        except AssertionError:
            continue
    raise AssertionError(f"the cell never ran; the page: {screenshot(driver, 'failed-cell')}")


def test_lab_launcher_notebook_cell_and_saved_output(
        dtrun: DtrunRunner, make_project: Callable[..., Path], browser: Any, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By

    root = make_project({".dtrun/workflows.yaml": workflow_file("ide", "lab")})
    with DevEnv(dtrun, root, "ide") as env:
        url = env.url()
        env.wait_answers(url)
        browser.get(url)
        wait_until(lambda: browser.find_element(By.CSS_SELECTOR, ".jp-Launcher"), "the JupyterLab launcher")
        click(lambda: browser.find_element(By.CSS_SELECTOR, ".jp-LauncherCard[data-category='Notebook']"),
              "the launcher's notebook card")
        run_cell(browser, CELL.format(app="lab"))
        screenshot(browser, "lab")
        job = env.stop()
    assert saved_hello(dtrun, root, job, tmp_path / "saved") == "hello from lab"


def test_notebook_new_notebook_cell_and_saved_output(
        dtrun: DtrunRunner, make_project: Callable[..., Path], browser: Any, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By

    root = make_project({".dtrun/workflows.yaml": workflow_file("ide", "notebook")})
    with DevEnv(dtrun, root, "ide") as env:
        url = env.url()
        env.wait_answers(url)
        browser.get(url)
        # Notebook 7's file browser: File > New > Notebook opens the notebook in a new tab
        wait_until(lambda: browser.find_element(By.CSS_SELECTOR, ".jp-DirListing"), "the notebook file browser")
        tabs = set(browser.window_handles)
        click(lambda: browser.find_element(By.XPATH, "//div[contains(@class,'lm-MenuBar-itemLabel')]"
                                                     "[text()='File']"), "the File menu")
        click(lambda: browser.find_element(By.XPATH, "//div[contains(@class,'lm-Menu-itemLabel')][text()='New']"),
              "File > New")
        click(lambda: browser.find_element(By.XPATH, "//div[contains(@class,'lm-Menu-itemLabel')]"
                                                     "[text()='Notebook']"), "File > New > Notebook")
        new_tab = wait_until(lambda: set(browser.window_handles) - tabs, "the new notebook's tab")
        browser.switch_to.window(new_tab.pop())

        # Notebook 7 asks which kernel to use for a new notebook (Python 3 preselected): accept it
        click(lambda: browser.find_element(By.CSS_SELECTOR, ".jp-Dialog .jp-mod-accept"), "the kernel dialog",
              timeout=90)
        wait_until(lambda: not browser.find_elements(By.CSS_SELECTOR, ".jp-Dialog"), "the dialog to close")
        run_cell(browser, CELL.format(app="notebook"))
        screenshot(browser, "notebook")
        job = env.stop()
    assert saved_hello(dtrun, root, job, tmp_path / "saved") == "hello from notebook"


def test_code_workbench_renders_after_the_password(
        dtrun: DtrunRunner, make_project: Callable[..., Path], browser: Any) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    root = make_project({".dtrun/workflows.yaml": workflow_file("ide", "code"), "hello.py": "print('hi')\n"})
    with DevEnv(dtrun, root, "ide") as env:
        url = env.url()
        password = env.password()
        env.wait_answers(url + "login")
        browser.get(url)
        field = wait_until(lambda: browser.find_element(By.CSS_SELECTOR, "input[type='password']"),
                           "code-server's login page")
        field.send_keys(password, Keys.ENTER)
        wait_until(lambda: browser.find_element(By.CSS_SELECTOR, ".monaco-workbench"), "the VS Code workbench",
                   timeout=120)
        wait_until(lambda: "hello.py" in browser.find_element(By.CSS_SELECTOR, ".monaco-workbench").text,
                   "the project's files in the explorer", timeout=120)
        screenshot(browser, "code")
        job = env.stop()
    assert job["state"] == "STOPPED"
