"""The chat page in a real headless Chromium against a real `rearag serve` process whose LLM
nodes all talk to the scripted OpenAI-compatible server: streaming, Markdown, citations that
open their passage, the mode badge, no HTML from documents or answers, and a layout that holds
at 1280 and 390 px. Screenshots go to tests/artifacts/web/ (or $REARAG_ARTIFACTS/web/) for a
person to look at."""

from __future__ import annotations

import os
import re
from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest
from conftest import REPO
from fakes.openai_server import Script, serve
from fakes.pdfs import write_pdf
from fakes.scripted_agent import GOOD, router
from fakes.serving import free_port, scripted_env, start_server

from rearag.agent import prompts
from rearag.core.config import load_settings
from rearag.tools.ingest import ingest
from rearag.tools.store import Store

KEY = "sk-web-0123456789"
MODEL = "web-docs"
PDFS = "web-pdfs"  # a second collection: one PDF
CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
ARTIFACTS = Path(os.environ.get("REARAG_ARTIFACTS") or REPO / "tests" / "artifacts") / "web"
LAVA = "Where does lava come from?"
MARKUP = "How do web pages embed pictures?"
DRIFT = "Why is lava hot? drifting"  # the generator's draft drifts off the sources
# A title far wider than a phone, with a word longer than one: it must wrap, not widen the page.
LONG_TITLE = (
    "Sourdough starters and the " + "wild_yeast_" * 12 + " traditions of bread baking in many "
    "regions of the world, with notes on flour, water, salt and patience"
)
# A document whose text is markup: the page must show it, never run it.
HOSTILE = (
    'Web pages embed pictures with <img src=x onerror="window.pwned=1"> tags. '
    "Browsers run <script>window.pwned=2</script> blocks as code.\n"
)


def write_corpus(folder: Path) -> Path:
    folder.mkdir(parents=True)
    (folder / "volcano.md").write_text(
        "# Volcanoes\n\nA volcano is a rupture in the crust of a planet. Lava, volcanic ash and "
        "gases escape from a magma chamber below the surface.\n"
    )
    (folder / "markup.txt").write_text(HOSTILE)
    (folder / "bread.md").write_text(
        f"# {LONG_TITLE}\n\n"
        "Sourdough bread is leavened by a culture of wild yeast and lactic acid bacteria.\n"
    )
    return folder


def is_generate(messages: list[dict[str, str]]) -> bool:
    return messages[0]["content"] == prompts.GENERATE_SYSTEM


def quoting_answer(messages: list[dict[str, str]]) -> str:
    """Every sentence of the passage that shares most words with the question, copied (so the
    grounding check keeps each one), its first two words in bold, each cited; for the DRIFT
    question a sentence that no passage supports."""
    user = messages[1]["content"]
    asked = re.search(r"Question: (.*)\n", user).group(1)
    if DRIFT in asked:
        return "Bananas grow on the moon [1]."
    question = set(re.findall(r"\w+", asked.lower()))
    passages = re.findall(r'<passage number="(\d+)">(.*?)</passage>', user, re.S)
    number, text = max(
        passages, key=lambda p: len(question & set(re.findall(r"\w+", p[1].lower())))
    )
    sentences = re.split(r"(?<=\.)\s+", text.replace("# Volcanoes", "").strip())
    bold = [re.sub(r"^(\S+ \S+)", r"**\1**", s.rstrip(".")) for s in sentences if s]
    return " ".join(f"{s} [{number}]." for s in bold)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    tmp = tmp_path_factory.mktemp("web")
    script = Script()
    httpd, base = serve(script)
    seen: list[str] = []
    script.default = router({**GOOD, "generate": quoting_answer}, seen)
    home = tmp / "home"
    store = Store(load_settings(home=home), MODEL, create=True)
    ingest([write_corpus(tmp / "docs")], store, progress=False)
    kites = tmp / "kites"
    kites.mkdir()
    write_pdf(kites / "kites.pdf", "Box kites fly in a steady wind on a long line.", "Kite manual")
    ingest([kites], Store(store.settings, PDFS, create=True), progress=False)
    env = {**scripted_env(home, base, MODEL), "REARAG_SERVE__API_KEY": KEY}
    port = free_port()
    proc = start_server(["-c", MODEL, "-c", PDFS], env, port, tmp / "serve.log")
    url = f"http://127.0.0.1:{port}"
    try:
        # Warm-up (first litellm call, first query embedding), outside the page's timings.
        body = {"model": MODEL, "messages": [{"role": "user", "content": "warm-up: lava?"}]}
        auth = {"Authorization": f"Bearer {KEY}"}
        httpx.post(f"{url}/v1/chat/completions", json=body, headers=auth, timeout=60)
        yield SimpleNamespace(url=url, script=script)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        httpd.shutdown()


@pytest.fixture(scope="module")
def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    # Not a skip: CI installs the browser (.ci/run), so a missing one is a broken setup.
    assert CHROMIUM.exists() and CHROMEDRIVER.exists(), "apt-get install chromium chromium-driver"
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--hide-scrollbars",
        "--force-device-scale-factor=1",
        "--window-size=1280,900",
        "--lang=en-US",
    ):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    try:
        yield driver
    finally:
        driver.quit()


# Records, in order, when answer text and the mode badge enter the page. Mutation records keep
# their order even when two chunks arrive in one network read, so "streamed text came first"
# holds whether the server sends the answer sentence by sentence or in one piece at the end.
WATCH = """
window.seen = [];
new MutationObserver((records) => {
  for (const r of records) {
    if (r.target instanceof Element && r.target.matches(".answer")) {
      const text = [...r.addedNodes].map((n) => n.textContent).join("");
      // The unchecked draft must be out of sight once the checked answer shows.
      const draft = r.target.parentElement.querySelector(".draft");
      const drafting = draft !== null && getComputedStyle(draft).display !== "none";
      if (text) window.seen.push([drafting ? "text beside draft" : "text", text]);
    }
    for (const n of r.addedNodes) {
      if (n instanceof Element && n.matches(".mode")) window.seen.push(["badge", n.textContent]);
    }
  }
}).observe(document.getElementById("log"), { childList: true, subtree: true });
"""


def shot(driver, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    assert driver.save_screenshot(str(path)) and path.stat().st_size > 5_000


def layout_holds(driver) -> None:
    """No sideways scrolling, and a header on one line (the buttons never wrap)."""
    width = driver.execute_script("return window.innerWidth")
    assert driver.execute_script("return document.documentElement.scrollWidth") <= width
    header = driver.execute_script(
        "const r = (s) => document.querySelector(s).getBoundingClientRect();"
        "return [r('.bar').height, r('#new-thread').height, r('#new-thread').right];"
    )
    assert header[0] < 64 and header[1] < 44 and header[2] <= width, header


def ask(driver, wait, text: str):
    from selenium.webdriver.common.by import By

    done = ".turn[data-done]"
    before = len(driver.find_elements(By.CSS_SELECTOR, done))
    driver.execute_script("window.seen = [];")
    driver.find_element(By.ID, "question").send_keys(text)
    driver.find_element(By.ID, "send").click()
    wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, done)) > before)
    return driver.find_elements(By.CSS_SELECTOR, done)[-1]


def test_chat_page(server, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait

    driver, wait = browser, WebDriverWait(browser, 60)
    icon = httpx.get(server.url + "/favicon.ico")  # public, like the page
    assert icon.status_code == 200 and icon.headers["content-type"].startswith("image/svg+xml")
    page = httpx.get(server.url + "/")
    assert "default-src 'self'" in page.headers["content-security-policy"]

    driver.get(server.url + "/")
    # The server wants a key: the settings open by themselves and ask for it.
    wait.until(lambda d: d.find_element(By.ID, "key-box").is_displayed())
    assert (
        driver.find_element(By.CSS_SELECTOR, "link[rel=icon]")
        .get_attribute("href")
        .endswith("/favicon.ico")
    )
    driver.find_element(By.ID, "api-key").send_keys(KEY)
    driver.find_element(By.ID, "show-reasoning").click()
    driver.find_element(By.ID, "settings-toggle").click()
    # The collections come with the key (GET /v1/models): /health names none on a keyed server.
    wait.until(lambda d: MODEL in d.find_element(By.ID, "empty").text)
    empty = driver.find_element(By.ID, "empty")
    assert empty.is_displayed()
    layout_holds(driver)
    shot(driver, "empty-1280")
    # A starter chip fills the box and leaves the cursor where the topic goes.
    driver.find_element(By.CSS_SELECTOR, ".chip[data-before='How does ']").click()
    box = driver.find_element(By.ID, "question")
    assert box.get_attribute("value") == "How does  work?"
    assert driver.execute_script("return document.activeElement.selectionStart") == len("How does ")
    box.clear()

    driver.execute_script(WATCH)
    server.script.word_delay_s = 0.03  # the generator's draft arrives word by word
    try:
        turn = ask(driver, wait, LAVA)
    finally:
        server.script.word_delay_s = 0.0
    assert not driver.find_elements(By.CSS_SELECTOR, ".error")
    # The checked answer was shown as it streamed, before the final answer and its badge.
    seen = driver.execute_script("return window.seen")
    kinds = [kind for kind, _ in seen]
    assert "text beside draft" not in kinds, seen
    assert "badge" in kinds and kinds.index("text") < kinds.index("badge"), seen
    # Sentence by sentence: the first piece shown holds the first sentence, not yet the second.
    first = seen[kinds.index("text")][1]
    assert "rupture in the crust" in first and "magma chamber" not in first, seen
    assert int(turn.get_attribute("data-tokens")) > 0  # the unchecked draft, as progress
    assert not turn.find_elements(By.CSS_SELECTOR, ".draft, .progress")  # gone at the end
    badge = turn.find_element(By.CSS_SELECTOR, ".mode")
    assert badge.text == "Generated" and turn.get_attribute("data-mode") == "generated"
    answer = turn.find_element(By.CSS_SELECTOR, ".answer")
    assert answer.find_element(By.TAG_NAME, "strong").text == "A volcano"  # Markdown
    assert "rupture in the crust" in answer.text and "Sources:" not in answer.text
    # A citation in the answer opens its passage in the source list.
    cite = answer.find_element(By.CSS_SELECTOR, "a.cite")
    number = cite.text.strip("[]")
    source = turn.find_element(By.CSS_SELECTOR, f".source[data-n='{number}']")
    passage = source.find_element(By.CSS_SELECTOR, ".passage")
    assert "Volcanoes" in source.text and not passage.is_displayed()
    cite.click()
    wait.until(lambda d: passage.is_displayed())
    assert "magma chamber" in passage.text and "flash" in source.get_attribute("class")
    trace = turn.find_element(By.CSS_SELECTOR, ".trace")
    assert "grade: ok" in trace.get_attribute("textContent")
    reasoning = turn.find_element(By.CSS_SELECTOR, ".reasoning")  # asked for in the settings
    assert reasoning.is_displayed() and "rerank window [1-3] ok" in reasoning.text

    # A document made of markup: shown as text in the answer and in its passage, never run.
    turn = ask(driver, wait, MARKUP)
    answer = turn.find_element(By.CSS_SELECTOR, ".answer")
    assert '<img src=x onerror="window.pwned=1">' in answer.text
    assert "<script>window.pwned=2</script>" in answer.text
    assert answer.find_element(By.TAG_NAME, "strong").text == "Web pages"
    answer.find_element(By.CSS_SELECTOR, "a.cite").click()
    assert "<script>" in turn.find_element(By.CSS_SELECTOR, ".source.cited .passage").text
    assert not driver.find_elements(By.CSS_SELECTOR, "#log img, #log script")
    assert driver.execute_script("return window.pwned") is None
    # The page keeps one thread: the follow-up's generator saw the first question.
    generate = [r["messages"] for r in server.script.requests if is_generate(r["messages"])]
    assert MARKUP in generate[-1][-1]["content"] and LAVA in generate[-1][-1]["content"]
    # An unsupported draft gives way to the sources' own sentences, and the page says so.
    turn = ask(driver, wait, DRIFT)
    assert turn.get_attribute("data-mode") == "extractive"
    assert turn.find_element(By.CSS_SELECTOR, ".mode").text == "Extracted from the sources"
    answer = turn.find_element(By.CSS_SELECTOR, ".answer").text
    assert "Bananas" not in answer and "Extracted from" not in answer and answer.strip()
    layout_holds(driver)
    first_turn = driver.find_element(By.CSS_SELECTOR, ".turn")
    driver.execute_script("arguments[0].scrollIntoView()", first_turn)
    shot(driver, "answer-1280")

    # A phone: 390 px wide, as the device reports it (the page's viewport meta applies).
    driver.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": 390, "height": 844, "deviceScaleFactor": 1, "mobile": True},
    )
    assert driver.execute_script("return window.innerWidth") == 390
    layout_holds(driver)
    driver.execute_script("arguments[0].scrollIntoView()", first_turn)
    shot(driver, "answer-390")
    driver.find_element(By.ID, "new-thread").click()
    assert empty.is_displayed() and not driver.find_elements(By.CSS_SELECTOR, ".turn")
    layout_holds(driver)
    shot(driver, "empty-390")

    # Nothing failed in the page: no script error, no blocked resource, no CSP violation.
    problems = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
    assert not problems, problems

    # A wrong key: the error is said in the turn and the settings open to fix it.
    driver.find_element(By.ID, "settings-toggle").click()
    driver.find_element(By.ID, "api-key").send_keys("-wrong")
    driver.find_element(By.ID, "question").send_keys(LAVA + Keys.ENTER)
    error = wait.until(lambda d: d.find_element(By.CSS_SELECTOR, ".turn .error"))
    assert "API key" in error.text and driver.find_element(By.ID, "settings").is_displayed()
    assert not driver.find_elements(By.CSS_SELECTOR, ".turn .progress")


def test_a_long_source_title_wraps_on_a_phone(server, browser):
    """A source whose title is wider than the screen (with a word wider than it too) wraps
    inside its list item: the page never scrolls sideways, and the title is whole."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    driver, wait = browser, WebDriverWait(browser, 60)
    driver.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": 390, "height": 844, "deviceScaleFactor": 1, "mobile": True},
    )
    driver.get(server.url + "/")
    driver.execute_script("sessionStorage.setItem('rearag-key', arguments[0])", KEY)
    driver.get(server.url + "/")  # the key is read as the page loads
    assert driver.execute_script("return window.innerWidth") == 390
    turn = ask(driver, wait, LAVA)
    assert not turn.find_elements(By.CSS_SELECTOR, ".error")
    more = turn.find_element(By.CSS_SELECTOR, ".more-sources")
    more.find_element(By.TAG_NAME, "summary").click()  # the bread source is not cited
    [name] = [n for n in turn.find_elements(By.CSS_SELECTOR, ".name") if n.text == LONG_TITLE]
    width = driver.execute_script("return window.innerWidth")
    assert driver.execute_script("return document.documentElement.scrollWidth") <= width
    right, height, size = driver.execute_script(
        "const r = arguments[0].getBoundingClientRect();"
        "return [r.right, r.height, parseFloat(getComputedStyle(arguments[0]).fontSize)];",
        name,
    )
    assert right <= width and height > 3 * size  # inside the screen, on several lines
    layout_holds(driver)
    driver.execute_script("arguments[0].scrollIntoView()", more)
    shot(driver, "long-title-390")


def test_a_pdf_source_shows_its_page(server, browser):
    """A cited PDF passage names its page beside the file, as the CLI and the Sources text do."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    driver, wait = browser, WebDriverWait(browser, 60)
    driver.get(server.url + "/")
    driver.execute_script("sessionStorage.setItem('rearag-key', arguments[0])", KEY)
    driver.get(server.url + "/")
    from selenium.webdriver.support.ui import Select

    wait.until(lambda d: PDFS in d.find_element(By.ID, "model").text)
    Select(driver.find_element(By.ID, "model")).select_by_visible_text(PDFS)
    turn = ask(driver, wait, "How do box kites fly on a long line?")
    cited = turn.find_element(By.CSS_SELECTOR, ".source.cited")
    assert cited.find_element(By.CSS_SELECTOR, ".name").text == "Kite manual"
    assert cited.find_element(By.CSS_SELECTOR, ".file").text == "kites.pdf, p. 1"
