//! Headless Chromium driven over WebDriver (chromedriver), for the console's tests.
//!
//! `Browser::start` finds `chromedriver` and `chromium` (`CHROMEDRIVER` / `CHROMIUM`, else
//! `/usr/bin`, else `PATH`); without them the test prints a notice and skips, unless
//! `REQUIRE_BROWSER` is set (as `.ci/run` does), where a missing browser fails the test.
//! Every step takes a screenshot; when a scenario fails they are kept in
//! `target/browser-screenshots/<test>/` (and always when `KEEP_SCREENSHOTS` is set).

use std::{
    future::Future,
    panic::AssertUnwindSafe,
    path::{Path, PathBuf},
    sync::atomic::{AtomicUsize, Ordering},
    time::{Duration, Instant},
};

use fantoccini::{Client, ClientBuilder, Locator, elements::Element};
use futures::FutureExt;
use serde_json::{Value, json};

/// How long a step waits for what it expects on the page.
pub const STEP_TIMEOUT: Duration = Duration::from_secs(15);

/// One headless Chromium session and the chromedriver behind it.
pub struct Browser {
    pub client: Client,
    /// The server the pages come from, e.g. `http://127.0.0.1:41234`.
    pub base: String,
    shots: PathBuf,
    step: AtomicUsize,
    _driver: tokio::process::Child,
}

fn find_program(variable: &str, names: &[&str]) -> Option<PathBuf> {
    if let Ok(path) = std::env::var(variable) {
        return Some(PathBuf::from(path));
    }
    for name in names {
        let fixed = Path::new("/usr/bin").join(name);
        if fixed.exists() {
            return Some(fixed);
        }
        if let Some(found) = std::env::var_os("PATH").and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|dir| dir.join(name))
                .find(|p| p.exists())
        }) {
            return Some(found);
        }
    }
    None
}

impl Browser {
    /// Starts chromedriver and a headless Chromium window of 1280×900 showing nothing yet;
    /// `None` (after a notice) when no browser is installed and none is required.
    pub async fn start(test: &str, base: &str) -> Option<Browser> {
        let driver = find_program("CHROMEDRIVER", &["chromedriver"]);
        let chromium = find_program(
            "CHROMIUM",
            &["chromium", "chromium-browser", "google-chrome"],
        );
        let (Some(driver), Some(chromium)) = (driver, chromium) else {
            assert!(
                std::env::var_os("REQUIRE_BROWSER").is_none(),
                "REQUIRE_BROWSER is set but chromium/chromedriver are not installed"
            );
            eprintln!(
                "NOTICE: {test} skipped: install Debian's chromium and chromium-driver (bash .ci/run does) to run the browser tests"
            );
            return None;
        };
        let port = crate::process::free_port();
        let child = tokio::process::Command::new(&driver)
            .arg(format!("--port={port}"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("start chromedriver");
        let url = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(20);
        while reqwest::get(format!("{url}/status")).await.is_err() {
            assert!(Instant::now() < deadline, "chromedriver did not start");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let mut capabilities = serde_json::Map::new();
        capabilities.insert(
            "goog:chromeOptions".into(),
            json!({
                "binary": chromium,
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                         "--window-size=1280,900", "--no-first-run", "--disable-extensions"],
            }),
        );
        let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(capabilities)
            .connect(&url)
            .await
            .expect("open a Chromium session");
        let shots = crate::workspace_root()
            .join("target/browser-screenshots")
            .join(test);
        let _ = std::fs::remove_dir_all(&shots);
        std::fs::create_dir_all(&shots).unwrap();
        Some(Browser {
            client,
            base: base.to_owned(),
            shots,
            step: AtomicUsize::new(0),
            _driver: child,
        })
    }

    /// Runs a scenario; on failure keeps the screenshots (and one of the page as it was
    /// when it failed), then fails the test. The browser session is closed either way.
    pub async fn run(&self, scenario: impl Future<Output = ()>) {
        let outcome = AssertUnwindSafe(scenario).catch_unwind().await;
        if outcome.is_err() {
            self.shot("failed").await;
            eprintln!("screenshots of each step: {}", self.shots.display());
        }
        let keep = outcome.is_err() || std::env::var_os("KEEP_SCREENSHOTS").is_some();
        let _ = self.client.clone().close().await;
        if !keep {
            let _ = std::fs::remove_dir_all(&self.shots);
        }
        if let Err(panic) = outcome {
            std::panic::resume_unwind(panic);
        }
    }

    /// Saves a screenshot of the page as `NN-<name>.png`.
    pub async fn shot(&self, name: &str) {
        let n = self.step.fetch_add(1, Ordering::SeqCst);
        if let Ok(png) = self.client.screenshot().await {
            let _ = std::fs::write(self.shots.join(format!("{n:02}-{name}.png")), png);
        }
    }

    /// Opens a path of the server (`/`, `/#/pipeline`…).
    pub async fn open(&self, path: &str) {
        self.client
            .goto(&format!("{}{path}", self.base))
            .await
            .unwrap_or_else(|err| panic!("open {path}: {err}"));
    }

    /// Waits for an element matching `css`.
    pub async fn find(&self, css: &str) -> Element {
        self.client
            .wait()
            .at_most(STEP_TIMEOUT)
            .for_element(Locator::Css(css))
            .await
            .unwrap_or_else(|err| panic!("no element {css}: {err}"))
    }

    /// Waits until the text of the first element matching `css` contains `text`.
    pub async fn find_text(&self, css: &str, text: &str) -> Element {
        let deadline = Instant::now() + STEP_TIMEOUT;
        let mut seen = String::new();
        loop {
            for element in self
                .client
                .find_all(Locator::Css(css))
                .await
                .unwrap_or_default()
            {
                if let Ok(content) = element.text().await {
                    if content.contains(text) {
                        return element;
                    }
                    seen = content;
                }
            }
            assert!(
                Instant::now() < deadline,
                "no {css} with text {text:?} (last seen: {seen:?})"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// How many elements match `css` now.
    pub async fn count(&self, css: &str) -> usize {
        self.client
            .find_all(Locator::Css(css))
            .await
            .map(|all| all.len())
            .unwrap_or(0)
    }

    /// Clears the field `css` and types `text` into it.
    pub async fn type_into(&self, css: &str, text: &str) {
        let field = self.find(css).await;
        field.clear().await.unwrap();
        field.send_keys(text).await.unwrap();
    }

    /// Clicks `css` once it is there and enabled.
    pub async fn click(&self, css: &str) {
        let deadline = Instant::now() + STEP_TIMEOUT;
        loop {
            let element = self.find(css).await;
            if element.is_enabled().await.unwrap_or(false) {
                match element.click().await {
                    Ok(_) => return,
                    Err(err) if Instant::now() >= deadline => panic!("click {css}: {err}"),
                    Err(_) => {}
                }
            }
            assert!(Instant::now() < deadline, "{css} stayed disabled");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The `value` of a form field.
    pub async fn value(&self, css: &str) -> String {
        self.find(css)
            .await
            .prop("value")
            .await
            .unwrap()
            .unwrap_or_default()
    }

    /// Runs a script in the page and returns its result.
    pub async fn script(&self, script: &str) -> Value {
        self.client
            .execute(script, vec![])
            .await
            .unwrap_or_else(|err| panic!("script {script}: {err}"))
    }

    /// Drags the first element matching `from` onto the first matching `to` with the mouse,
    /// as a person would: press, move in steps, release.
    pub async fn drag(&self, from: &str, to: &str) {
        use fantoccini::actions::{InputSource, MOUSE_BUTTON_LEFT, MouseActions, PointerAction};
        let source = self.find(from).await;
        let target = self.find(to).await;
        let step = Some(Duration::from_millis(150));
        let mouse = MouseActions::new("mouse".to_owned())
            .then(PointerAction::MoveToElement {
                element: source,
                duration: None,
                x: 0.0,
                y: 0.0,
            })
            .then(PointerAction::Down {
                button: MOUSE_BUTTON_LEFT,
            })
            .then(PointerAction::MoveBy {
                duration: step,
                x: 12.0,
                y: 4.0,
            })
            .then(PointerAction::MoveToElement {
                element: target,
                duration: step,
                x: 0.0,
                y: 0.0,
            })
            .then(PointerAction::Up {
                button: MOUSE_BUTTON_LEFT,
            });
        self.client
            .perform_actions(mouse)
            .await
            .unwrap_or_else(|err| panic!("drag {from} to {to}: {err}"));
        let _ = self.client.release_actions().await;
        self.shot("dragged").await;
    }

    /// Resizes the window (390×844 is a phone).
    pub async fn resize(&self, width: u32, height: u32) {
        self.client
            .set_window_size(width, height)
            .await
            .unwrap_or_else(|err| panic!("resize to {width}×{height}: {err}"));
    }

    /// Asserts the page is no wider than the window, naming the elements that stick out
    /// (those whose scrolling ancestors do not hold them).
    pub async fn assert_fits(&self, page: &str) {
        let report = self
            .script(
                "const w = window.innerWidth; \
                 if (document.documentElement.scrollWidth <= w) return ''; \
                 const held = (e) => { for (let p = e.parentElement; p; p = p.parentElement) { \
                   const o = getComputedStyle(p).overflowX; if (o === 'auto' || o === 'scroll' || o === 'hidden') return true; } return false; }; \
                 return [...document.querySelectorAll('body *')] \
                   .filter((e) => e.getBoundingClientRect().right > w + 1 && !held(e)) \
                   .slice(0, 8) \
                   .map((e) => `${e.tagName.toLowerCase()}${e.id ? '#' + e.id : ''}.${[...e.classList].join('.')} ${Math.round(e.getBoundingClientRect().right)}px`) \
                   .join(', ') || `${document.documentElement.scrollWidth}px`;",
            )
            .await;
        let report = report.as_str().unwrap_or_default();
        assert!(
            report.is_empty(),
            "{page} is wider than the window: {report}"
        );
    }

    /// Signs in through the sign-in form and waits for the navigation bar.
    pub async fn sign_in(&self, email: &str, password: &str) {
        self.open("/").await;
        self.type_into("#email", email).await;
        self.type_into("#password", password).await;
        self.shot("sign-in").await;
        self.click("#login button[type=submit]").await;
        self.find("#sign-out").await;
        // The session is in an HttpOnly cookie: no script of the page can read it.
        let readable = self
            .script(
                "return document.cookie + ' ' + JSON.stringify(Object.assign({}, localStorage));",
            )
            .await;
        let readable = readable.as_str().unwrap_or_default().to_owned();
        assert!(readable.contains("crm_csrf="), "{readable}");
        assert!(
            !readable.contains("crm_session") && !readable.contains("eyJ"),
            "a script can read the session: {readable}"
        );
    }
}
