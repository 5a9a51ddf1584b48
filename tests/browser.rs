//! The activation pages in a real browser: Debian's Chromium, headless, driven through
//! chromedriver (see `common/browser.rs`). What a student gets: the forms as the browser
//! submits them, the live password check of `static/password.js` under the CSP, the
//! pages without JavaScript, the language switch, and the accessibility basics.
//!
//! These run on SQLite only: the browser cannot tell the backends apart, and
//! tests/activation.rs already runs the same flows over HTTP on both.

mod common;

use common::browser::Browser;
use common::{Backend, PENDING_EMAIL, PENDING_UID, TestApp, TestSmtp, link_token, people_dn};

const NEW_PASSWORD: &str = "Cerisier-en-fleur-7";

/// Page titles (the `h1`) along the way, in French (the default) and English.
const START_FR: &str = "Activer mon compte";
const SENT_FR: &str = "Consultez votre messagerie";
const PASSWORD_FR: &str = "Choisir mon mot de passe";
const DONE_FR: &str = "Votre compte est activé";
const START_EN: &str = "Activate my account";
const SENT_EN: &str = "Check your e-mail";
const PASSWORD_EN: &str = "Choose my password";

/// Rules `static/password.js` checks in the browser; the others are left to the server.
const CHECKED_IN_BROWSER: &[&str] = &[
    "min_length",
    "max_length",
    "min_letters",
    "min_digits",
    "upper",
    "lower",
    "digit",
    "special",
    "min_classes",
    "allowed_specials",
];

/// Paris Cité's profile, its mail going to a real SMTP server process.
async fn start() -> (TestApp, TestSmtp) {
    let smtp = TestSmtp::start();
    let app = TestApp::start_tweaked(Backend::Sqlite, "paris-cite", |t| {
        common::with_transport(t, &smtp.transport())
    })
    .await;
    (app, smtp)
}

/// On the start page: types the personal e-mail, ticks the terms, submits.
async fn ask_for_link(browser: &Browser, email: &str) {
    browser.type_into("#email", email).await;
    browser.click("#terms").await;
    browser.click("form button[type=submit]").await;
}

/// The password page's address from the activation mail (the mail's host is the
/// configured public URL; the test app listens elsewhere).
async fn password_link(app: &TestApp, smtp: &TestSmtp) -> String {
    let mails = smtp.wait_for(1, 20).await;
    assert_eq!(mails.len(), 1, "one activation mail");
    let token = link_token(&mails[0], "/activation/password");
    app.url(&format!("/activation/password?t={token}"))
}

/// From the start page to the password page, in French.
async fn reach_password_page(browser: &Browser, app: &TestApp, smtp: &TestSmtp) {
    browser.goto(&app.url("/activation")).await;
    browser.wait_for_title(START_FR).await;
    ask_for_link(browser, PENDING_EMAIL).await;
    browser.wait_for_title(SENT_FR).await;
    browser.goto(&password_link(app, smtp).await).await;
    browser.wait_for_title(PASSWORD_FR).await;
}

/// Types the password twice and saves.
async fn save_password(browser: &Browser, password: &str, confirmation: &str) {
    let field = browser.find("#password").await;
    field.clear().await.unwrap();
    field.send_keys(password).await.unwrap();
    let field = browser.find("#confirmation").await;
    field.clear().await.unwrap();
    field.send_keys(confirmation).await.unwrap();
    browser.click("form button[type=submit]").await;
}

/// `data-rule` → `data-met` of each rule listed on the password page.
async fn rule_states(browser: &Browser) -> Vec<(String, Option<String>)> {
    let mut states = Vec::new();
    for item in browser.find_all("#rules li[data-rule]").await {
        let rule = item.attr("data-rule").await.unwrap().unwrap_or_default();
        states.push((rule, item.attr("data-met").await.unwrap()));
    }
    states
}

/// The ids an element's `aria-describedby` names.
async fn described_by(element: &fantoccini::elements::Element) -> Vec<String> {
    element
        .attr("aria-describedby")
        .await
        .unwrap()
        .unwrap_or_default()
        .split_whitespace()
        .map(str::to_owned)
        .collect()
}

/// Every visible form control of the page has an accessible name, given by a
/// `label for` its id, a wrapping `label`, `aria-label` or `aria-labelledby`.
async fn assert_every_visible_input_is_labelled(browser: &Browser) {
    let mut checked = 0;
    for input in browser.find_all("input, select, textarea").await {
        if !input.is_displayed().await.unwrap() {
            continue; // hidden fields (CSRF, token, the username for password managers)
        }
        let id = input.attr("id").await.unwrap().unwrap_or_default();
        let name = input.attr("name").await.unwrap().unwrap_or_default();
        let label_for = !id.is_empty() && browser.has(&format!("label[for=\"{id}\"]")).await;
        let wrapped = !input
            .find_all(fantoccini::Locator::XPath("ancestor::label"))
            .await
            .unwrap()
            .is_empty();
        let aria = input.attr("aria-label").await.unwrap().is_some()
            || input.attr("aria-labelledby").await.unwrap().is_some();
        assert!(
            label_for || wrapped || aria,
            "the visible field `{name}` (id `{id}`) has no label on {}",
            browser.url().await
        );
        let computed = browser.computed_label(&input).await;
        assert!(
            !computed.trim().is_empty(),
            "the browser computes no accessible name for `{name}`"
        );
        checked += 1;
    }
    assert!(checked > 0, "no visible field on {}", browser.url().await);
}

/// Every id named by an `aria-describedby` on the page exists.
async fn assert_descriptions_exist(browser: &Browser) {
    for element in browser.find_all("[aria-describedby]").await {
        for id in described_by(&element).await {
            assert!(
                browser.has(&format!("#{id}")).await,
                "aria-describedby names `{id}`, which is not on {}",
                browser.url().await
            );
        }
    }
}

/// Console entries at the `SEVERE` level (script errors, failed loads, CSP refusals)
/// since the last call.
async fn console_errors(browser: &Browser) -> Vec<String> {
    browser
        .console()
        .await
        .into_iter()
        .filter(|entry| entry["level"] == "SEVERE")
        .map(|entry| entry["message"].as_str().unwrap_or_default().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paris_cite_activation_end_to_end_in_the_browser() {
    let (app, smtp) = start().await;
    let browser = Browser::start().await;
    browser.goto(&app.url("/activation")).await;
    browser.wait_for_title(START_FR).await;
    ask_for_link(&browser, PENDING_EMAIL).await;
    browser.wait_for_title(SENT_FR).await;
    assert!(browser.text().await.contains(PENDING_EMAIL));

    browser.goto(&password_link(&app, &smtp).await).await;
    browser.wait_for_title(PASSWORD_FR).await;
    assert!(
        browser.text().await.contains(PENDING_UID),
        "the login is shown"
    );
    save_password(&browser, NEW_PASSWORD, NEW_PASSWORD).await;
    browser.wait_for_title(DONE_FR).await;
    assert!(browser.text().await.contains(PENDING_UID));
    assert_eq!(
        app.directory.whoami(&people_dn(PENDING_UID), NEW_PASSWORD),
        0,
        "a bind with the new password succeeds"
    );
    browser.close().await;
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_password_rules_are_checked_live_under_the_csp() {
    let (app, smtp) = start().await;
    let browser = Browser::start().await;
    reach_password_page(&browser, &app, &smtp).await;
    let states = rule_states(&browser).await;
    assert!(
        states.iter().any(|(rule, _)| rule == "min_length"),
        "{states:?}"
    );
    assert!(
        states.iter().all(|(_, met)| met.is_none()),
        "nothing judged before typing: {states:?}"
    );

    // A weak password: the rules it breaks are marked unmet as it is typed. The
    // script runs only if the CSP let it: this is the proof that it does.
    browser.type_into("#password", "abc").await;
    browser
        .wait_until("the live check to judge the rules", || async {
            rule_states(&browser)
                .await
                .iter()
                .any(|(_, met)| met.is_some())
        })
        .await;
    let states = rule_states(&browser).await;
    let state_of = |rule: &str| {
        states
            .iter()
            .find(|(r, _)| r == rule)
            .and_then(|(_, met)| met.clone())
    };
    assert_eq!(state_of("min_length").as_deref(), Some("no"), "{states:?}");
    assert_eq!(state_of("min_digits").as_deref(), Some("no"), "{states:?}");
    assert_eq!(
        state_of("min_letters").as_deref(),
        Some("yes"),
        "{states:?}"
    );
    let unmet = browser
        .find("#rules li[data-rule=min_length] .rule-state")
        .await;
    assert_eq!(unmet.text().await.unwrap(), "(pas encore)");

    // A good one: every rule the browser can judge is met; the others (personal
    // data, guessability) are left to the server and stay unjudged.
    let field = browser.find("#password").await;
    field.clear().await.unwrap();
    field.send_keys(NEW_PASSWORD).await.unwrap();
    browser
        .wait_until("every browser-checked rule to be met", || async {
            rule_states(&browser)
                .await
                .iter()
                .filter(|(rule, _)| CHECKED_IN_BROWSER.contains(&rule.as_str()))
                .all(|(_, met)| met.as_deref() == Some("yes"))
        })
        .await;
    let states = rule_states(&browser).await;
    for (rule, met) in &states {
        if !CHECKED_IN_BROWSER.contains(&rule.as_str()) {
            assert_eq!(met, &None, "`{rule}` is left to the server: {states:?}");
        }
    }
    let met = browser
        .find("#rules li[data-rule=min_length] .rule-state")
        .await;
    assert_eq!(met.text().await.unwrap(), "(respecté)");
    // A different confirmation is flagged on its field.
    browser.type_into("#confirmation", "autre chose").await;
    let confirmation = browser.find("#confirmation").await;
    assert_eq!(
        confirmation
            .prop("validationMessage")
            .await
            .unwrap()
            .as_deref(),
        Some("les deux saisies doivent être identiques")
    );
    assert_eq!(
        console_errors(&browser).await,
        Vec::<String>::new(),
        "no console error on the password page"
    );

    // The script never stops the form: a password it approves still goes to the
    // server, which refuses this one (it contains the login).
    save_password(&browser, "ldurand2025", "ldurand2025").await;
    let errors = browser.find("#password-errors").await;
    assert!(
        errors
            .text()
            .await
            .unwrap()
            .contains("ni votre identifiant"),
        "{}",
        browser.text().await
    );
    browser.close().await;
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_password_is_explained_next_to_the_field_and_the_form_stays() {
    // Whatever the live check says, the browser submits and the server decides.
    let (app, smtp) = start().await;
    let browser = Browser::start().await;
    reach_password_page(&browser, &app, &smtp).await;
    save_password(&browser, "abc", "abc").await;
    let errors = browser.find("#password-errors").await;
    browser.wait_for_title(PASSWORD_FR).await;
    assert!(
        browser.url().await.ends_with("/activation/password"),
        "still on the password form: {}",
        browser.url().await
    );
    assert!(browser.has("#errors[role=alert] #password-errors").await);
    assert!(errors.is_displayed().await.unwrap());
    assert!(
        errors
            .text()
            .await
            .unwrap()
            .contains("au moins 8 caractères"),
        "{}",
        browser.text().await
    );
    let field = browser.find("#password").await;
    assert!(
        described_by(&field)
            .await
            .contains(&"password-errors".to_owned())
    );
    assert_eq!(
        field.attr("aria-invalid").await.unwrap().as_deref(),
        Some("true")
    );
    assert!(
        browser.has("input[type=hidden][name=t]").await,
        "the form keeps its link"
    );
    save_password(&browser, NEW_PASSWORD, NEW_PASSWORD).await;
    browser.wait_for_title(DONE_FR).await;
    assert_eq!(
        app.directory.whoami(&people_dn(PENDING_UID), NEW_PASSWORD),
        0
    );
    browser.close().await;
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn activation_works_without_javascript() {
    let (app, smtp) = start().await;
    let browser = Browser::start_without_javascript().await;
    reach_password_page(&browser, &app, &smtp).await;
    // JavaScript is really off: typing changes nothing in the rules list.
    browser.type_into("#password", "abc").await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(
        rule_states(&browser)
            .await
            .iter()
            .all(|(_, met)| met.is_none()),
        "no script ran"
    );
    save_password(&browser, NEW_PASSWORD, NEW_PASSWORD).await;
    browser.wait_for_title(DONE_FR).await;
    assert!(browser.text().await.contains(PENDING_UID));
    assert_eq!(
        app.directory.whoami(&people_dn(PENDING_UID), NEW_PASSWORD),
        0
    );
    browser.close().await;
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_english_switch_shows_english_and_it_stays() {
    let (app, smtp) = start().await;
    let browser = Browser::start().await;
    browser.goto(&app.url("/activation")).await;
    browser.wait_for_title(START_FR).await;
    assert_eq!(browser.lang().await, "fr", "French by default");
    let switch = browser.find("a.lang").await;
    assert_eq!(switch.text().await.unwrap(), "English");
    assert_eq!(
        switch.attr("hreflang").await.unwrap().as_deref(),
        Some("en")
    );
    switch.click().await.unwrap();
    browser.wait_for_title(START_EN).await;
    assert_eq!(browser.lang().await, "en");
    assert!(browser.text().await.contains("Personal e-mail address"));

    // The next page, reached by the form, is still in English.
    ask_for_link(&browser, PENDING_EMAIL).await;
    browser.wait_for_title(SENT_EN).await;
    assert_eq!(browser.lang().await, "en");
    // And so is the page of the mailed link, opened in the same browser.
    browser.goto(&password_link(&app, &smtp).await).await;
    browser.wait_for_title(PASSWORD_EN).await;
    assert_eq!(browser.lang().await, "en");
    // Switching back works too.
    browser.goto(&app.url("/activation")).await;
    browser.wait_for_title(START_EN).await;
    browser.click("a.lang").await;
    browser.wait_for_title(START_FR).await;
    assert_eq!(browser.lang().await, "fr");
    browser.close().await;
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fields_are_labelled_and_errors_are_tied_to_them() {
    let (app, smtp) = start().await;
    let browser = Browser::start().await;
    browser.goto(&app.url("/activation")).await;
    browser.wait_for_title(START_FR).await;
    assert_every_visible_input_is_labelled(&browser).await;
    assert_descriptions_exist(&browser).await;

    // An empty form: the server answers with an error summary linking to each field,
    // and each field names its error.
    browser.click("form button[type=submit]").await;
    let summary = browser.find("#errors").await;
    assert_eq!(
        summary.attr("role").await.unwrap().as_deref(),
        Some("alert")
    );
    for field in ["email", "terms"] {
        let link = browser.find(&format!("#errors a[href=\"#{field}\"]")).await;
        assert!(!link.text().await.unwrap().trim().is_empty());
        let input = browser.find(&format!("#{field}")).await;
        assert_eq!(
            input.attr("aria-invalid").await.unwrap().as_deref(),
            Some("true"),
            "{field}"
        );
        let error_id = format!("{field}-error");
        assert!(
            described_by(&input).await.contains(&error_id),
            "{field} is described by its error"
        );
        let error = browser.find(&format!("#{error_id}")).await;
        assert!(error.is_displayed().await.unwrap());
        assert!(!error.text().await.unwrap().trim().is_empty());
        // Following the summary's link puts the keyboard focus on the field.
        link.click().await.unwrap();
        browser
            .wait_until(&format!("the focus on #{field}"), || async {
                let active = browser.client.active_element().await.unwrap();
                active.attr("id").await.unwrap().as_deref() == Some(field)
            })
            .await;
    }
    assert_every_visible_input_is_labelled(&browser).await;
    assert_descriptions_exist(&browser).await;

    // The password page.
    browser.goto(&app.url("/activation")).await;
    ask_for_link(&browser, PENDING_EMAIL).await;
    browser.wait_for_title(SENT_FR).await;
    browser.goto(&password_link(&app, &smtp).await).await;
    browser.wait_for_title(PASSWORD_FR).await;
    assert_every_visible_input_is_labelled(&browser).await;
    assert_descriptions_exist(&browser).await;
    let field = browser.find("#password").await;
    assert!(
        described_by(&field).await.contains(&"rules".to_owned()),
        "the rules describe the field"
    );
    save_password(&browser, "abc", "abc").await;
    browser.find("#password-errors").await;
    let summary = browser.find("#errors").await;
    assert_eq!(
        summary.attr("role").await.unwrap().as_deref(),
        Some("alert")
    );
    let field = browser.find("#password").await;
    assert!(
        described_by(&field)
            .await
            .contains(&"password-errors".to_owned())
    );
    assert_eq!(
        field.attr("aria-invalid").await.unwrap().as_deref(),
        Some("true")
    );
    assert_every_visible_input_is_labelled(&browser).await;
    assert_descriptions_exist(&browser).await;
    browser.close().await;
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_content_security_policy_breaks_nothing() {
    let (app, _smtp) = start().await;
    let csp = app.get("/activation").await.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"),
        "the policy under test is the strict one: {csp}"
    );
    let browser = Browser::start().await;
    browser.goto(&app.url("/activation")).await;
    browser.wait_for_title(START_FR).await;
    // Both stylesheets applied: style.css hides the skip link off-screen, and the
    // profile's colours come from theme.css (Paris Cité's primary is #1d1d6b).
    assert_eq!(
        browser
            .find("a.skip")
            .await
            .css_value("left")
            .await
            .unwrap(),
        "-999px"
    );
    let background = browser
        .find("header.banner")
        .await
        .css_value("background-color")
        .await
        .unwrap();
    // Chromium writes `rgb(29, 29, 107)` or `rgba(29, 29, 107, 1)`, by version.
    let channels: Vec<&str> = background
        .trim_start_matches("rgba(")
        .trim_start_matches("rgb(")
        .trim_end_matches(')')
        .split(", ")
        .collect();
    assert_eq!(channels[..3], ["29", "29", "107"], "{background}");
    assert!(channels.len() == 3 || channels[3] == "1", "{background}");
    assert_eq!(
        console_errors(&browser).await,
        Vec::<String>::new(),
        "no console error on the start page"
    );
    ask_for_link(&browser, PENDING_EMAIL).await;
    browser.wait_for_title(SENT_FR).await;
    assert_eq!(
        console_errors(&browser).await,
        Vec::<String>::new(),
        "no console error on the page after it"
    );
    // The password page, the one with a script, is checked in
    // `the_password_rules_are_checked_live_under_the_csp`.
    browser.close().await;
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_language_switch_on_the_password_page_keeps_the_link() {
    let (app, smtp) = start().await;
    let browser = Browser::start().await;
    reach_password_page(&browser, &app, &smtp).await;
    browser.click("a.lang").await;
    browser.wait_for_title(PASSWORD_EN).await;
    assert_eq!(browser.lang().await, "en");
    save_password(&browser, NEW_PASSWORD, NEW_PASSWORD).await;
    browser.wait_for_title("Your account is active").await;
    browser.close().await;
    app.shutdown().await;
}
