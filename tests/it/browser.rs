//! The student pages in a real browser (activation, forgotten password, sign-in and
//! sign-out, help): Debian's Chromium, headless, driven through chromedriver (see
//! `common/browser.rs`). What a student gets: the forms as the browser submits them,
//! the live password check of `static/password.js` under the CSP, the pages without
//! JavaScript, the language switch, and the accessibility basics.
//!
//! These run on SQLite only: the browser cannot tell the backends apart, and
//! `activation.rs` already runs the same flows over HTTP on both.

use crate::common::browser::Browser;
use crate::common::{
    self, ACTIVE_EMAIL, ACTIVE_UID, Backend, DEMO_PASSWORD, PENDING_EMAIL, PENDING_UID, TestApp,
    TestSmtp, link_token, people_dn,
};
use fantoccini::key::Key;

const NEW_PASSWORD: &str = "Cerisier-en-fleur-7";

/// Page titles (the `h1`) along the way, in French (the default) and English.
const START_FR: &str = "Activer mon compte";
const SENT_FR: &str = "Consultez votre messagerie";
const PASSWORD_FR: &str = "Choisir mon mot de passe";
const DONE_FR: &str = "Votre compte est activé";
const START_EN: &str = "Activate my account";
const SENT_EN: &str = "Check your e-mail";
const PASSWORD_EN: &str = "Choose my password";
const FORGOT_FR: &str = "Mot de passe oublié";
const RESET_FR: &str = "Choisir un nouveau mot de passe";
const CHANGED_FR: &str = "Mot de passe changé";
const LOGIN_FR: &str = "Connexion";
const ACCOUNT_FR: &str = "Mon compte";
const HOME_FR: &str = "Votre compte numérique";
const HELP_FR: &str = "Contacter l’assistance";
const HELP_SENT_FR: &str = "Demande envoyée";

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

/// Saves `password` (twice the same) and waits for the page titled `done`.
async fn save_password_until(browser: &Browser, password: &str, done: &str) {
    save_password(browser, password, password).await;
    browser.wait_for_title(done).await;
}

/// The `id` of the element holding the keyboard focus.
async fn focused_id(browser: &Browser) -> String {
    let active = browser.client.active_element().await.unwrap();
    active.attr("id").await.unwrap().unwrap_or_default()
}

/// Waits for the keyboard focus to be on the element with this `id`.
async fn wait_for_focus_on(browser: &Browser, id: &str) {
    browser
        .wait_until(&format!("the focus on #{id}"), || async {
            focused_id(browser).await == id
        })
        .await;
}

/// The error summary is there, announced (`role=alert`) and focused, as a screen
/// reader or keyboard user needs it after a refused form.
async fn assert_focused_error_summary(browser: &Browser) {
    let summary = browser.find("#errors").await;
    assert_eq!(
        summary.attr("role").await.unwrap().as_deref(),
        Some("alert")
    );
    assert!(summary.is_displayed().await.unwrap());
    wait_for_focus_on(browser, "errors").await;
}

/// The `href`s of the error summary's links, in page order.
async fn summary_links(browser: &Browser) -> Vec<String> {
    let mut links = Vec::new();
    for link in browser.find_all("#errors a[href^='#']").await {
        links.push(link.attr("href").await.unwrap().unwrap_or_default());
    }
    links
}

/// The reset link's address from the mail sent to the account's personal e-mail.
async fn reset_link(app: &TestApp, smtp: &TestSmtp) -> String {
    let mails = smtp.wait_for(1, 20).await;
    assert_eq!(mails.len(), 1, "one reset mail");
    let token = link_token(&mails[0], "/password/reset");
    app.url(&format!("/password/reset?t={token}"))
}

/// From the forgot-password page to the new-password form of `ACTIVE_UID`.
async fn reach_reset_page(browser: &Browser, app: &TestApp, smtp: &TestSmtp) {
    browser.goto(&app.url("/password/forgot")).await;
    browser.wait_for_title(FORGOT_FR).await;
    browser.type_into("#identifier", ACTIVE_EMAIL).await;
    browser.click("form button[type=submit]").await;
    browser.wait_for_title(SENT_FR).await;
    browser.goto(&reset_link(app, smtp).await).await;
    browser.wait_for_title(RESET_FR).await;
}

/// Signs in on the login page with the keyboard: the login, the password, Enter.
async fn sign_in(browser: &Browser, app: &TestApp, login: &str, password: &str) {
    browser.goto(&app.url("/login")).await;
    browser.wait_for_title(LOGIN_FR).await;
    browser.type_into("#login", login).await;
    browser.type_into("#password", password).await;
    browser.type_into("#password", &Key::Enter).await;
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
    save_password_until(&browser, NEW_PASSWORD, DONE_FR).await;
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
    save_password_until(&browser, NEW_PASSWORD, DONE_FR).await;
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
    save_password_until(&browser, NEW_PASSWORD, DONE_FR).await;
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
    save_password_until(&browser, NEW_PASSWORD, "Your account is active").await;
    browser.close().await;
    app.shutdown().await;
}

/// Types a weak password, then a good one, and checks that `static/password.js` judges
/// the rules live (so the CSP let it run) without a console error.
async fn assert_live_rule_check(browser: &Browser) {
    assert!(
        rule_states(browser)
            .await
            .iter()
            .all(|(_, met)| met.is_none()),
        "nothing judged before typing"
    );
    browser.type_into("#password", "abc").await;
    browser
        .wait_until("the live check to judge the rules", || async {
            rule_states(browser)
                .await
                .iter()
                .any(|(_, met)| met.is_some())
        })
        .await;
    let states = rule_states(browser).await;
    let min_length = states.iter().find(|(rule, _)| rule == "min_length");
    assert_eq!(
        min_length.and_then(|(_, met)| met.as_deref()),
        Some("no"),
        "{states:?}"
    );
    let field = browser.find("#password").await;
    field.clear().await.unwrap();
    field.send_keys(NEW_PASSWORD).await.unwrap();
    browser
        .wait_until("every browser-checked rule to be met", || async {
            rule_states(browser)
                .await
                .iter()
                .filter(|(rule, _)| CHECKED_IN_BROWSER.contains(&rule.as_str()))
                .all(|(_, met)| met.as_deref() == Some("yes"))
        })
        .await;
    assert_eq!(
        console_errors(browser).await,
        Vec::<String>::new(),
        "no console error on {}",
        browser.url().await
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forgot_password_end_to_end_in_the_browser() {
    let (app, smtp) = start().await;
    let browser = Browser::start().await;
    reach_reset_page(&browser, &app, &smtp).await;
    assert!(
        browser.text().await.contains(ACTIVE_UID),
        "the login is shown"
    );
    assert_live_rule_check(&browser).await;
    save_password_until(&browser, NEW_PASSWORD, CHANGED_FR).await;
    assert!(browser.text().await.contains(ACTIVE_UID));
    assert_eq!(
        app.directory.whoami(&people_dn(ACTIVE_UID), NEW_PASSWORD),
        0,
        "a bind with the new password succeeds"
    );
    assert_ne!(
        app.directory.whoami(&people_dn(ACTIVE_UID), DEMO_PASSWORD),
        0,
        "the old password no longer works"
    );
    browser.close().await;
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_in_shows_the_account_and_sign_out_ends_the_session() {
    let (app, _smtp) = start().await;
    let browser = Browser::start().await;
    sign_in(&browser, &app, ACTIVE_UID, DEMO_PASSWORD).await;
    browser.wait_for_title(ACCOUNT_FR).await;
    assert!(browser.url().await.ends_with("/account"));
    let page = browser.text().await;
    assert!(page.contains(ACTIVE_EMAIL), "{page}");
    assert!(page.contains(ACTIVE_UID), "{page}");

    let logout = browser
        .find("form[action='/logout'] button[type=submit]")
        .await;
    assert_eq!(logout.text().await.unwrap().trim(), "Se déconnecter");
    logout.click().await.unwrap();
    browser.wait_for_title(HOME_FR).await;
    browser.goto(&app.url("/account")).await;
    browser.wait_for_title(LOGIN_FR).await;
    assert!(
        browser.url().await.contains("/login"),
        "signed out: {}",
        browser.url().await
    );
    browser.close().await;
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_password_is_announced_and_the_login_is_kept() {
    let (app, _smtp) = start().await;
    let browser = Browser::start().await;
    sign_in(&browser, &app, ACTIVE_UID, "Pas-le-bon-1").await;
    assert_focused_error_summary(&browser).await;
    browser.wait_for_title(LOGIN_FR).await;
    assert!(
        browser
            .find("#errors")
            .await
            .text()
            .await
            .unwrap()
            .contains("Identifiant ou mot de passe incorrect"),
        "{}",
        browser.text().await
    );
    let login = browser.find("#login").await;
    assert_eq!(
        login.prop("value").await.unwrap().as_deref(),
        Some(ACTIVE_UID)
    );
    // The right password still signs in from the refused form.
    browser.type_into("#password", DEMO_PASSWORD).await;
    browser
        .click("form[action='/login'] button[type=submit]")
        .await;
    browser.wait_for_title(ACCOUNT_FR).await;
    browser.close().await;
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_help_form_names_every_missing_field_then_gives_a_reference() {
    let (app, _smtp) = start().await;
    let browser = Browser::start().await;
    browser.goto(&app.url("/help")).await;
    browser.wait_for_title(HELP_FR).await;
    browser.click("form button[type=submit]").await;
    assert_focused_error_summary(&browser).await;
    let links = summary_links(&browser).await;
    for field in ["#name", "#identifier", "#contact", "#category", "#message"] {
        assert!(links.contains(&field.to_owned()), "{field} in {links:?}");
    }
    // Every link leads to a field flagged invalid.
    for link in &links {
        let field = browser.find(link).await;
        assert_eq!(
            field.attr("aria-invalid").await.unwrap().as_deref(),
            Some("true"),
            "{link}"
        );
    }

    browser.type_into("#name", "Chloé Bernard").await;
    browser.type_into("#identifier", ACTIVE_UID).await;
    browser.type_into("#contact", ACTIVE_EMAIL).await;
    browser
        .find("#category")
        .await
        .select_by_value("password")
        .await
        .unwrap();
    browser
        .type_into("#message", "Le lien de réinitialisation n’arrive pas.")
        .await;
    browser.click("form button[type=submit]").await;
    browser.wait_for_title(HELP_SENT_FR).await;
    let reference = browser.find("#reference").await.text().await.unwrap();
    assert!(reference.starts_with("AIDE-"), "{reference}");
    assert!(browser.text().await.contains(ACTIVE_EMAIL));
    browser.close().await;
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reset_login_and_help_fields_are_labelled_and_errors_are_tied_to_them() {
    let (app, smtp) = start().await;
    let browser = Browser::start().await;
    for (path, title) in [
        ("/password/forgot", FORGOT_FR),
        ("/login", LOGIN_FR),
        ("/help", HELP_FR),
    ] {
        browser.goto(&app.url(path)).await;
        browser.wait_for_title(title).await;
        assert_every_visible_input_is_labelled(&browser).await;
        assert_descriptions_exist(&browser).await;
        // A refused form: the summary has the focus, the page stays labelled.
        browser.click("main form button[type=submit]").await;
        assert_focused_error_summary(&browser).await;
        assert_every_visible_input_is_labelled(&browser).await;
        assert_descriptions_exist(&browser).await;
    }

    // The forgot-password form: the error is tied to its field, and the summary's
    // link puts the keyboard focus there.
    browser.goto(&app.url("/password/forgot")).await;
    browser.wait_for_title(FORGOT_FR).await;
    browser.type_into("#identifier", "pas une adresse").await;
    browser.click("form button[type=submit]").await;
    assert_focused_error_summary(&browser).await;
    let field = browser.find("#identifier").await;
    assert_eq!(
        field.attr("aria-invalid").await.unwrap().as_deref(),
        Some("true")
    );
    assert!(
        described_by(&field)
            .await
            .contains(&"identifier-error".to_owned())
    );
    assert_eq!(
        field.prop("value").await.unwrap().as_deref(),
        Some("pas une adresse"),
        "the typed value is kept"
    );
    browser.click("#errors a[href='#identifier']").await;
    wait_for_focus_on(&browser, "identifier").await;

    // Each help field names its own error.
    browser.goto(&app.url("/help")).await;
    browser.wait_for_title(HELP_FR).await;
    browser.click("form button[type=submit]").await;
    assert_focused_error_summary(&browser).await;
    for field in ["name", "contact", "category", "message"] {
        let input = browser.find(&format!("#{field}")).await;
        let error_id = format!("{field}-error");
        assert!(
            described_by(&input).await.contains(&error_id),
            "{field} is described by its error"
        );
        let error = browser.find(&format!("#{error_id}")).await;
        assert!(!error.text().await.unwrap().trim().is_empty());
        browser.click(&format!("#errors a[href='#{field}']")).await;
        wait_for_focus_on(&browser, field).await;
    }

    // The new-password form behind the mailed link.
    reach_reset_page(&browser, &app, &smtp).await;
    assert_every_visible_input_is_labelled(&browser).await;
    assert_descriptions_exist(&browser).await;
    let field = browser.find("#password").await;
    assert!(described_by(&field).await.contains(&"rules".to_owned()));
    save_password(&browser, "abc", "abc").await;
    browser.find("#password-errors").await;
    assert_focused_error_summary(&browser).await;
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

/// An application on another origin: a real HTTP server that answers its callback
/// with a page showing what it received.
async fn application_on_another_origin() -> String {
    async fn callback(
        axum::extract::RawQuery(query): axum::extract::RawQuery,
    ) -> axum::response::Html<String> {
        axum::response::Html(format!(
            "<!doctype html><title>Application</title><h1>Application</h1><p id=\"query\">{}</p>",
            query.unwrap_or_default()
        ))
    }
    let app = axum::Router::new().route("/cb", axum::routing::get(callback));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}/cb")
}

/// The whole OIDC sign-in in a real browser, ending on another origin: the login
/// form's redirects to the application are not stopped by the page's CSP.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_application_on_another_origin_gets_its_code_through_the_browser() {
    let (app, _smtp) = start().await;
    let callback = application_on_another_origin().await;
    common::oidc::registered(&app, common::oidc::confidential("moodle", &callback)).await;
    let mut query = url::form_urlencoded::Serializer::new(String::new());
    query
        .append_pair("response_type", "code")
        .append_pair("client_id", "moodle")
        .append_pair("redirect_uri", &callback)
        .append_pair("scope", "openid profile")
        .append_pair("state", "browser-state");
    let browser = Browser::start().await;
    browser
        .goto(&app.url(&format!("/authorize?{}", query.finish())))
        .await;
    browser.wait_for_title(LOGIN_FR).await;
    browser.type_into("#login", ACTIVE_UID).await;
    browser.type_into("#password", DEMO_PASSWORD).await;
    browser.type_into("#password", &Key::Enter).await;
    browser.wait_for_title("Application").await;
    let received = browser.find("#query").await.text().await.unwrap();
    assert!(
        received.contains("code=") && received.contains("state=browser-state"),
        "{received}"
    );
    assert!(browser.url().await.starts_with(&callback));
    browser.close().await;
    app.shutdown().await;
}

/// A CAS service that asked for `method=POST`: it receives the ticket in a
/// form the browser posts, by `static/autopost.js` under the CSP, or by the
/// student's click without JavaScript. The service answers with a page titled
/// "ENT" naming the ticket it got.
async fn post_receiving_service() -> (String, common::oidc::Seen) {
    use axum::extract::{Form, State};
    let seen: common::oidc::Seen = Default::default();
    async fn receive(
        State(seen): State<common::oidc::Seen>,
        Form(form): Form<Vec<(String, String)>>,
    ) -> axum::response::Html<&'static str> {
        if let Some((_, ticket)) = form.into_iter().find(|(k, _)| k == "ticket") {
            seen.lock().unwrap().push(ticket);
        }
        axum::response::Html(
            "<!doctype html><html lang=\"fr\"><title>ENT</title><h1>ENT</h1></html>",
        )
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = axum::Router::new()
        .route("/ent", axum::routing::post(receive))
        .with_state(seen.clone());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}/ent"), seen)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cas_ticket_asked_by_post_is_posted_to_the_service() {
    let (app, _smtp) = start().await;
    let (service, seen) = post_receiving_service().await;
    common::cas::register(&app, common::cas::exact("ent", &service, &[])).await;
    let login = app.url(&common::cas::login_url(&service, &[("method", "POST")]));
    for javascript in [true, false] {
        let browser = match javascript {
            true => Browser::start().await,
            false => Browser::start_without_javascript().await,
        };
        browser.goto(&login).await;
        browser.wait_for_title(LOGIN_FR).await;
        browser.type_into("#login", ACTIVE_UID).await;
        browser.type_into("#password", DEMO_PASSWORD).await;
        browser.type_into("#password", &Key::Enter).await;
        if !javascript {
            browser.wait_for_title("Connexion à l’application").await;
            browser.click("#autopost button[type=submit]").await;
        }
        browser.wait_for_title("ENT").await;
        let posted = seen.lock().unwrap().pop().expect("the ticket was posted");
        let pairs = [("service", service.as_str()), ("ticket", posted.as_str())];
        let xml = common::cas::validation(&app, "/p3/serviceValidate", &pairs).await;
        assert_eq!(
            common::cas::element(&xml, "user").as_deref(),
            Some(ACTIVE_UID),
            "{xml}"
        );
        if javascript {
            let refused: Vec<_> = browser
                .console()
                .await
                .into_iter()
                .filter(|entry| entry["level"] == "SEVERE")
                .filter(|entry| {
                    let message = entry["message"].as_str().unwrap_or_default();
                    message.contains("Content Security Policy") || message.contains(&app.url(""))
                })
                .collect();
            assert!(
                refused.is_empty(),
                "Guichet's page loaded whole: {refused:?}"
            );
        }
        browser.close().await;
    }
    app.shutdown().await;
}
