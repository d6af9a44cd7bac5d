//! The staff console in a real browser: headless Debian Chromium driven through ChromeDriver
//! (W3C WebDriver over HTTP, spoken here directly: a handful of JSON calls need no client
//! library), against the real `steward serve`. Each journey saves a screenshot of its last page
//! in `$CARGO_TARGET_TMPDIR/screenshots/`. `scripts/ensure-chromium` installs the browser.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use steward_domain::Role;

use crate::support::{Kind, Server, TestDb};

/// A ChromeDriver process and one browser session in it.
pub(crate) struct Browser {
    driver: Child,
    port: u16,
    session: String,
    _profile: tempfile::TempDir,
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.call("DELETE", &format!("/session/{}", self.session), None);
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// One HTTP/1.1 exchange with ChromeDriver: the JSON `value` of its answer.
fn webdriver(port: u16, method: &str, path: &str, body: Option<&Value>) -> Result<Value, String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let body = body.map(Value::to_string).unwrap_or_default();
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).map_err(|e| e.to_string())?;
    // Read the head, then exactly Content-Length bytes: ChromeDriver may keep the connection
    // open whatever the request says.
    let mut raw = Vec::new();
    let mut buf = [0u8; 8192];
    let (head_end, length) = loop {
        let n = s.read(&mut buf).map_err(|e| e.to_string())?;
        if n == 0 {
            return Err("closed before the head".into());
        }
        raw.extend_from_slice(&buf[..n]);
        if let Some(i) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&raw[..i]).to_ascii_lowercase();
            let length = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse::<usize>().ok())
                .ok_or("no content-length")?;
            break (i + 4, length);
        }
    };
    while raw.len() < head_end + length {
        let n = s.read(&mut buf).map_err(|e| e.to_string())?;
        if n == 0 {
            return Err("closed mid-body".into());
        }
        raw.extend_from_slice(&buf[..n]);
    }
    let json = String::from_utf8_lossy(&raw[head_end..head_end + length]).into_owned();
    let v: Value = serde_json::from_str(&json).map_err(|e| format!("{e}: {json}"))?;
    match v["value"].get("error") {
        Some(e) => Err(format!("{e}: {}", v["value"]["message"])),
        None => Ok(v["value"].clone()),
    }
}

impl Browser {
    pub(crate) fn start() -> Browser {
        let port = free_port();
        let driver = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver is not installed: run scripts/ensure-chromium (Debian's chromium and chromium-driver)");
        let deadline = Instant::now() + Duration::from_secs(30);
        while webdriver(port, "GET", "/status", None).is_err() {
            assert!(Instant::now() < deadline, "chromedriver did not start");
            std::thread::sleep(Duration::from_millis(100));
        }
        let profile = tempfile::tempdir().unwrap();
        // The flags this machine needs: no sandbox as root, and no background connections
        // (the network is closed; Chromium would retry them at every start).
        let caps = json!({"capabilities": {"alwaysMatch": {"browserName": "chrome",
            "goog:chromeOptions": {"binary": "/usr/bin/chromium", "args": [
                "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--no-first-run", "--window-size=414,896",
                format!("--user-data-dir={}", profile.path().display())]}}}});
        let session = webdriver(port, "POST", "/session", Some(&caps)).expect("a Chromium session")
            ["sessionId"]
            .as_str()
            .unwrap()
            .to_owned();
        Browser {
            driver,
            port,
            session,
            _profile: profile,
        }
    }

    pub(crate) fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Value, String> {
        webdriver(self.port, method, path, body)
    }

    pub(crate) fn session_call(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let path = format!("/session/{}{path}", self.session);
        self.call(method, &path, body.as_ref())
            .unwrap_or_else(|e| panic!("{method} {path}: {e}"))
    }

    pub(crate) fn go(&self, url: &str) {
        self.session_call("POST", "/url", Some(json!({ "url": url })));
    }

    pub(crate) fn source(&self) -> String {
        self.session_call("GET", "/source", None)
            .as_str()
            .unwrap()
            .to_owned()
    }

    pub(crate) fn element(&self, css: &str) -> String {
        let v = self.session_call(
            "POST",
            "/element",
            Some(json!({"using": "css selector", "value": css})),
        );
        v.as_object()
            .and_then(|o| o.values().next())
            .and_then(Value::as_str)
            .unwrap_or_else(|| panic!("no element {css}"))
            .to_owned()
    }

    pub(crate) fn type_into(&self, css: &str, text: &str) {
        let e = self.element(css);
        self.session_call(
            "POST",
            &format!("/element/{e}/value"),
            Some(json!({ "text": text })),
        );
    }

    /// Empties a field, then types into it (a form that came back keeps what was typed).
    pub(crate) fn clear_and_type(&self, css: &str, text: &str) {
        let e = self.element(css);
        self.session_call("POST", &format!("/element/{e}/clear"), Some(json!({})));
        self.type_into(css, text);
    }

    pub(crate) fn click(&self, css: &str) {
        let e = self.element(css);
        self.session_call("POST", &format!("/element/{e}/click"), Some(json!({})));
    }

    /// Waits until the page source contains `text`.
    pub(crate) fn wait_for(&self, text: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let src = self.source();
            if src.contains(text) {
                return src;
            }
            assert!(
                Instant::now() < deadline,
                "the page never showed {text:?}:\n{src}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Saves a PNG screenshot as a test artifact; returns its path.
    pub(crate) fn screenshot(&self, name: &str) -> PathBuf {
        use base64::Engine;
        let png = base64::engine::general_purpose::STANDARD
            .decode(
                self.session_call("GET", "/screenshot", None)
                    .as_str()
                    .unwrap(),
            )
            .unwrap();
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("screenshots");
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(format!("{name}.png"));
        std::fs::write(&path, png).unwrap();
        path
    }
}

/// Staff sign-in → search → pick a purpose → masked profile → break-glass with a reason.
#[test]
fn staff_journey_in_a_real_browser() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (db, customer) = rt.block_on(async {
        let db = TestDb::new(Kind::Sqlite).await;
        let (vault, op, _) = db.open().await;
        let customer = crate::console::another_outlets_customer(
            &vault,
            op,
            (
                "Max Manager",
                Role::StoreManager,
                "max",
                "manager password 1",
            ),
            (
                "Dora Browser",
                "dora.browser@example.com",
                "+41 44 555 0199",
            ),
        )
        .await;
        vault.audit().flush().await.unwrap();
        (db, customer)
    });
    let server = Server::start(&db, &[], &[]);
    let base = format!("http://{}", server.addr);
    let b = Browser::start();

    b.go(&format!("{base}/console"));
    b.wait_for("Sign in</h1>");
    b.assert_accessible("the console's sign-in page");
    b.type_into("#login", "max");
    b.type_into("#password", "manager password 1");
    b.click("main button[type=submit]");
    b.wait_for("Find a customer</h1>");
    b.assert_accessible("the console's search page");

    b.type_into("#query", "dora.browser@example.com");
    b.click("option[value=service]");
    b.click("main button[type=submit]");
    b.wait_for("Results</h2>");
    b.click(".results a");
    let masked = b.wait_for("Customer</h1>");
    assert!(masked.contains("Dora Browser"));
    assert!(
        !masked.contains("dora.browser@example.com"),
        "another outlet's e-mail in clear"
    );
    assert!(masked.contains(">mask</span>"));
    b.assert_accessible("the console's customer page");
    let url = b.session_call("GET", "/url", None);
    assert_eq!(
        url.as_str().unwrap(),
        format!("{base}/console/customers/{customer}?purpose=service"),
        "no personal value in the URL"
    );

    b.type_into(
        "#reason",
        "Customer at the counter asks to update the delivery address",
    );
    b.click(".glass button");
    let full = b.wait_for("Break-glass read: recorded");
    assert!(
        full.contains("dora.browser@example.com"),
        "break-glass shows the record"
    );
    let shot = b.screenshot("staff-journey");
    assert!(std::fs::metadata(&shot).unwrap().len() > 1_000);
    drop(b);
    let (_, stderr) = server.stop();
    assert!(
        !stderr.contains("dora.browser"),
        "the server log names the customer"
    );
    // The break-glass read raised an alert for the DPO.
    let alerts: i64 = rt.block_on(async {
        use sqlx::Row;
        sqlx::query("SELECT COUNT(*) FROM access_alerts")
            .fetch_one(&db.raw().await)
            .await
            .unwrap()
            .get(0)
    });
    assert_eq!(alerts, 1);
}

/// axe-core's browser build, as `scripts/ensure-chromium` installs it.
fn axe_source() -> String {
    let tools = std::env::var_os("STEWARD_TOOLS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").unwrap()).join(".cache/steward"));
    let path = tools.join("axe-core-4.14.1/node_modules/axe-core/axe.min.js");
    std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "axe-core is not installed at {} ({e}): run scripts/ensure-chromium",
            path.display()
        )
    })
}

impl Browser {
    /// Runs axe-core's WCAG 2.1 A and AA rules on the page shown; fails with each violation.
    /// (WebDriver's scripts run outside the page's Content-Security-Policy.)
    pub(crate) fn assert_accessible(&self, what: &str) {
        let install = format!("{}\nreturn typeof axe;", axe_source());
        let kind = self.session_call(
            "POST",
            "/execute/sync",
            Some(json!({"script": install, "args": []})),
        );
        assert_eq!(kind, "object", "axe-core did not load");
        let violations = self.session_call(
            "POST",
            "/execute/async",
            Some(json!({"script": "const done = arguments[arguments.length - 1];
                axe.run(document, {runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa']}})
                  .then(r => done(r.violations.map(v => v.id + ': ' + v.help + ' at ' + v.nodes.map(n => n.target.join(' ')).join(', '))))
                  .catch(e => done(['axe failed: ' + e]));", "args": []})),
        );
        let violations = violations.as_array().unwrap();
        assert!(
            violations.is_empty(),
            "{what} breaks WCAG 2.1 AA:\n{}",
            violations
                .iter()
                .map(|v| v.as_str().unwrap_or_default())
                .collect::<Vec<_>>()
                .join("\n")
        );
    }

    /// Signs in to the staff console.
    pub(crate) fn staff_sign_in(&self, base: &str, login: &str, password: &str) {
        self.go(&format!("{base}/console/sign-in"));
        self.wait_for("Sign in</h1>");
        self.type_into("#login", login);
        self.type_into("#password", password);
        self.click("main button[type=submit]");
        self.wait_for("Find a customer</h1>");
    }

    /// Signs out of the staff console.
    pub(crate) fn staff_sign_out(&self) {
        self.click("header button[type=submit]");
        self.wait_for("Sign in</h1>");
    }

    /// Searches the console for `query` under `purpose`; returns the results page.
    pub(crate) fn staff_search(&self, query: &str, purpose: &str) -> String {
        self.type_into("#query", query);
        self.click(&format!("option[value={purpose}]"));
        self.click("main button[type=submit]");
        self.wait_for("Results</h2>")
    }

    /// Signs in to the privacy portal with the code the server wrote to `mail`.
    pub(crate) fn customer_sign_in(&self, base: &str, email: &str, mail: &std::path::Path) {
        let sent_before = std::fs::read_to_string(mail).unwrap_or_default().len();
        self.go(&format!("{base}/portal"));
        self.wait_for("See and control your data</h1>");
        self.assert_accessible("the portal's sign-in page");
        // By keyboard: the Enter key submits each form.
        self.type_into("#email", &format!("{email}\u{E007}"));
        self.wait_for("Enter your code</h1>");
        self.assert_accessible("the portal's code page");
        let deadline = Instant::now() + Duration::from_secs(20);
        let code = loop {
            let all = std::fs::read_to_string(mail).unwrap_or_default();
            let new = all.get(sent_before..).unwrap_or_default();
            let code = new
                .lines()
                .find(|l| l.len() == 8 && l.bytes().all(|b| b.is_ascii_digit()));
            if let Some(code) = code {
                assert!(new.contains(&format!("To: {email}")));
                break code.to_owned();
            }
            assert!(Instant::now() < deadline, "no code was sent");
            std::thread::sleep(Duration::from_millis(100));
        };
        self.type_into("#code", &format!("{code}\u{E007}"));
        self.wait_for("Your data</h1>");
        self.assert_accessible("the portal's overview");
    }
}

/// A signed note (a one-entry checkpoint) under a fixed key whose verifier key's base64 part
/// holds a '+', that key, and another key's verifier key.
fn notes_with_plus_in_key() -> (String, String, String) {
    let signer = (0u8..=255)
        .map(|i| {
            let seed = zeroize::Zeroizing::new([i; 32]);
            steward_crypto::NoteSigner::from_seed("example.org/log", &seed).unwrap()
        })
        .find(|s| {
            s.verifier_key()
                .splitn(3, '+')
                .nth(2)
                .unwrap()
                .contains('+')
        })
        .expect("a seed whose key has a '+' in base64");
    let other =
        steward_crypto::NoteSigner::from_seed("other.example", &zeroize::Zeroizing::new([7; 32]))
            .unwrap();
    let note = signer.sign("example.org/log\n1\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n");
    (note, signer.verifier_key(), other.verifier_key())
}

/// A served SQLite database holding a customer who agreed to marketing in store (see
/// `portal::consenting_customer`), optionally a DPO staff member (login `dana`), and the file
/// the portal's codes go to.
struct PortalStage {
    _db: TestDb,
    customer: steward_domain::CustomerId,
    mail: PathBuf,
    server: Server,
    base: String,
}

fn portal_stage(who: (&str, &str, &str), with_dpo: bool) -> PortalStage {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (db, customer) = rt.block_on(async {
        let db = TestDb::new(Kind::Sqlite).await;
        let (vault, op, store) = db.open().await;
        let (customer, _) = crate::portal::consenting_customer(&vault, op, who).await;
        if with_dpo {
            let outlets = store.list_outlets().await.unwrap();
            let staff = vault
                .directory()
                .create_staff(op.into(), "Dana Officer", &[Role::Dpo], &[outlets[0].id])
                .await
                .unwrap();
            let password = zeroize::Zeroizing::new("protect the data 1".into());
            vault
                .identity()
                .set_staff_password(op, staff, "dana", password)
                .await
                .unwrap();
        }
        vault.audit().flush().await.unwrap();
        (db, customer)
    });
    let mail = db.dir.path().join("mail.txt");
    let server = Server::start(&db, &["--mail-sink", mail.to_str().unwrap()], &[]);
    let base = format!("http://{}", server.addr);
    PortalStage {
        _db: db,
        customer,
        mail,
        server,
        base,
    }
}

/// Customer sign-in → withdraw `marketing_email` → a staff read for `marketing_email` is now
/// refused. On the way, the customer checks their access log's proofs in the browser.
#[test]
fn customer_withdraws_consent_in_a_real_browser() {
    let PortalStage {
        customer,
        mail,
        server,
        base,
        _db: _kept, // the database's folder lives as long as the test
    } = portal_stage(
        ("Olga Optout", "olga.optout@example.com", "+41 21 555 0177"),
        false,
    );
    let b = Browser::start();
    let read = format!("{base}/console/customers/{customer}?purpose=marketing_email");

    // Before: marketing may read the customer for marketing_email: the name, never the
    // address (Steward sends the campaigns).
    b.staff_sign_in(&base, "mia", "marketing pass 1");
    b.go(&read);
    let page = b.wait_for("Customer</h1>");
    assert!(page.contains("Olga Optout"), "{page}");
    assert!(!page.contains("olga.optout@example.com"), "{page}");

    b.customer_sign_in(&base, "olga.optout@example.com", &mail);
    let home = b.source();
    assert!(home.contains("Olga Optout") && home.contains("+41215550177"));
    b.click("#withdraw-marketing_email");
    b.wait_for("You withdrew your consent to marketing email");
    assert!(b.source().contains("id=\"grant-marketing_email\""));
    // "Why you see these" (issue 20): what personalisation uses, and a switch that stops it.
    assert!(b.source().contains("Why you see these</h2>"));
    b.assert_accessible("the portal with 'Why you see these'");
    b.click("#stop-personalisation");
    b.wait_for("You withdrew your consent to personalisation");
    assert!(!b.source().contains("Why you see these</h2>"));
    assert!(b.source().contains("id=\"grant-personalisation\""));

    // The access log, its proofs checked by the page's own script (WebCrypto).
    b.click("header a[href='/portal/access-log']");
    b.wait_for("Who looked at your data</h1>");
    b.click("#verify");
    let checked = b.wait_for("entries are proven to be in it");
    let verdict = checked
        .split("id=\"verdict\"")
        .nth(1)
        .unwrap_or_default()
        .split("</p>")
        .next()
        .unwrap_or_default();
    assert!(
        verdict.contains("The log head is genuine"),
        "the signature did not check: {verdict}"
    );
    assert!(!checked.contains("not proven"));
    b.assert_accessible("the portal's access log");
    // The checker itself, on fixed cases: a verifier key whose base64 holds a '+' (the bug
    // this once had), a tampered note, another key.
    let (note, vkey, other) = notes_with_plus_in_key();
    let tampered = note.replacen("\n1\n", "\n2\n", 1);
    for (note, vkey, want) in [
        (&note, &vkey, ""),
        (&tampered, &vkey, "the signature is wrong"),
        (&note, &other, "no signature by other.example"),
    ] {
        let got = b.session_call(
            "POST",
            "/execute/async",
            Some(json!({"script": "const done = arguments[arguments.length - 1]; signedBy(arguments[0], arguments[1]).then(done, e => done('threw ' + e));", "args": [note, vkey]})),
        );
        assert_eq!(got, want, "{vkey}");
    }
    b.screenshot("customer-access-log");

    // After: the same staff read is refused, naming the purpose, and shows no data.
    b.go(&read);
    let refused = b.wait_for("marketing_email");
    assert!(!refused.contains("olga.optout@example.com"));
    assert!(!refused.contains("Customer</h1>"));
    b.assert_accessible("the console's refusal page");
    let shot = b.screenshot("customer-consent-journey");
    assert!(std::fs::metadata(&shot).unwrap().len() > 1_000);
    drop(b);
    let (_, stderr) = server.stop();
    assert!(
        !stderr.contains("olga"),
        "the server log names the customer"
    );
}

/// Customer erasure request completed → staff search finds nothing, the audit log shows the
/// disposal record.
#[test]
fn customer_erasure_in_a_real_browser() {
    let PortalStage {
        customer,
        mail,
        server,
        base,
        _db: _kept, // the database's folder lives as long as the test
    } = portal_stage(
        ("Ernst Erase", "ernst.erase@example.com", "+41 21 555 0188"),
        true,
    );
    let b = Browser::start();

    // Before: marketing finds the customer by e-mail.
    b.staff_sign_in(&base, "mia", "marketing pass 1");
    let found = b.staff_search("ernst.erase@example.com", "marketing_email");
    assert!(found.contains(&format!("/console/customers/{customer}")));
    b.staff_sign_out();

    b.customer_sign_in(&base, "ernst.erase@example.com", &mail);
    b.click("#confirm");
    b.click("#erase");
    let erased = b.wait_for("Your data is erased</h1>");
    assert!(!erased.contains("Ernst"));
    b.assert_accessible("the portal's erasure confirmation");

    // After: the same search finds nothing.
    b.staff_sign_in(&base, "mia", "marketing pass 1");
    let found = b.staff_search("ernst.erase@example.com", "marketing_email");
    assert!(found.contains("No customer matches"));
    assert!(!found.contains(&customer.to_string()));
    b.staff_sign_out();

    // The DPO's audit log shows the disposal record for the customer's id.
    b.staff_sign_in(&base, "dana", "protect the data 1");
    b.go(&format!("{base}/console/dpo"));
    let page = b.wait_for("Audit log</h2>");
    // Action, purpose (none for an erasure), customer.
    let disposal = format!("<td>erase</td><td></td><td class=\"id\">{customer}</td>");
    assert!(page.contains(&disposal), "no disposal record:\n{page}");
    assert!(!page.contains("ernst.erase"));
    b.assert_accessible("the DPO's page");
    b.session_call(
        "POST",
        "/execute/sync",
        Some(json!({"script": "[...document.querySelectorAll('td')].find(t => t.textContent === 'erase').scrollIntoView({block: 'center', inline: 'end'});", "args": []})),
    );
    let shot = b.screenshot("customer-erasure-journey");
    assert!(std::fs::metadata(&shot).unwrap().len() > 1_000);
    drop(b);
    let (_, stderr) = server.stop();
    assert!(
        !stderr.contains("ernst"),
        "the server log names the customer"
    );
}
