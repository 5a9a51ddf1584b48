//! Templates and texts shared by pages and mails: minijinja templates built into the
//! binary (an institution may override any of them from a folder), and `t("key")` for
//! the texts of `locales/` in the language of the render.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use minijinja::{Environment, State, Value};

use crate::domain::Lang;

#[derive(Debug)]
pub struct Catalog {
    fr: HashMap<String, String>,
    en: HashMap<String, String>,
}

impl Catalog {
    /// The catalogues built into the binary from `locales/`.
    pub fn builtin() -> Result<Catalog, toml::de::Error> {
        Ok(Catalog {
            fr: toml::from_str(include_str!("../locales/fr.toml"))?,
            en: toml::from_str(include_str!("../locales/en.toml"))?,
        })
    }

    pub fn get(&self, lang: Lang, key: &str) -> Option<&str> {
        match lang {
            Lang::Fr => self.fr.get(key),
            Lang::En => self.en.get(key),
        }
        .map(String::as_str)
    }
}

/// The built-in templates, by name.
const BUILTIN: &[(&str, &str)] = &[
    ("consent.html", include_str!("../templates/consent.html")),
    ("cas_post.html", include_str!("../templates/cas_post.html")),
    (
        "dev_cas_app.html",
        include_str!("../templates/dev_cas_app.html"),
    ),
    ("dev_app.html", include_str!("../templates/dev_app.html")),
    (
        "logout_confirm.html",
        include_str!("../templates/logout_confirm.html"),
    ),
    (
        "logged_out.html",
        include_str!("../templates/logged_out.html"),
    ),
    ("login.html", include_str!("../templates/login.html")),
    ("account.html", include_str!("../templates/account.html")),
    (
        "email_change.html",
        include_str!("../templates/email_change.html"),
    ),
    (
        "email_change_sent.html",
        include_str!("../templates/email_change_sent.html"),
    ),
    (
        "email_change_confirm.html",
        include_str!("../templates/email_change_confirm.html"),
    ),
    (
        "email_change_cancel.html",
        include_str!("../templates/email_change_cancel.html"),
    ),
    (
        "email_change_cancelled.html",
        include_str!("../templates/email_change_cancelled.html"),
    ),
    (
        "email_change_done.html",
        include_str!("../templates/email_change_done.html"),
    ),
    (
        "mail_email_change_link.txt",
        include_str!("../templates/mail_email_change_link.txt"),
    ),
    (
        "mail_email_change_link.html",
        include_str!("../templates/mail_email_change_link.html"),
    ),
    (
        "mail_email_change_taken.txt",
        include_str!("../templates/mail_email_change_taken.txt"),
    ),
    (
        "mail_email_change_taken.html",
        include_str!("../templates/mail_email_change_taken.html"),
    ),
    (
        "mail_email_change_requested.txt",
        include_str!("../templates/mail_email_change_requested.txt"),
    ),
    (
        "mail_email_change_requested.html",
        include_str!("../templates/mail_email_change_requested.html"),
    ),
    (
        "mail_email_changed.txt",
        include_str!("../templates/mail_email_changed.txt"),
    ),
    (
        "mail_email_changed.html",
        include_str!("../templates/mail_email_changed.html"),
    ),
    ("help.html", include_str!("../templates/help.html")),
    (
        "help_sent.html",
        include_str!("../templates/help_sent.html"),
    ),
    (
        "mail_support_help.txt",
        include_str!("../templates/mail_support_help.txt"),
    ),
    (
        "mail_support_help.html",
        include_str!("../templates/mail_support_help.html"),
    ),
    (
        "password_forgot.html",
        include_str!("../templates/password_forgot.html"),
    ),
    (
        "password_sent.html",
        include_str!("../templates/password_sent.html"),
    ),
    (
        "password_reset.html",
        include_str!("../templates/password_reset.html"),
    ),
    (
        "password_change.html",
        include_str!("../templates/password_change.html"),
    ),
    (
        "password_done.html",
        include_str!("../templates/password_done.html"),
    ),
    (
        "mail_reset_link.txt",
        include_str!("../templates/mail_reset_link.txt"),
    ),
    (
        "mail_reset_link.html",
        include_str!("../templates/mail_reset_link.html"),
    ),
    (
        "mail_reset_not_activated.txt",
        include_str!("../templates/mail_reset_not_activated.txt"),
    ),
    (
        "mail_reset_not_activated.html",
        include_str!("../templates/mail_reset_not_activated.html"),
    ),
    (
        "mail_reset_locked.txt",
        include_str!("../templates/mail_reset_locked.txt"),
    ),
    (
        "mail_reset_locked.html",
        include_str!("../templates/mail_reset_locked.html"),
    ),
    (
        "mail_password_changed.txt",
        include_str!("../templates/mail_password_changed.txt"),
    ),
    (
        "mail_password_changed.html",
        include_str!("../templates/mail_password_changed.html"),
    ),
    (
        "mail_support_shared_address.txt",
        include_str!("../templates/mail_support_shared_address.txt"),
    ),
    (
        "mail_support_shared_address.html",
        include_str!("../templates/mail_support_shared_address.html"),
    ),
    (
        "mail_support_ambiguous.txt",
        include_str!("../templates/mail_support_ambiguous.txt"),
    ),
    (
        "mail_support_ambiguous.html",
        include_str!("../templates/mail_support_ambiguous.html"),
    ),
    ("base.html", include_str!("../templates/base.html")),
    ("home.html", include_str!("../templates/home.html")),
    ("error.html", include_str!("../templates/error.html")),
    (
        "password_fields.html",
        include_str!("../templates/password_fields.html"),
    ),
    (
        "password_errors.html",
        include_str!("../templates/password_errors.html"),
    ),
    (
        "dev_mail_list.html",
        include_str!("../templates/dev_mail_list.html"),
    ),
    (
        "dev_mail_show.html",
        include_str!("../templates/dev_mail_show.html"),
    ),
    (
        "activation_start.html",
        include_str!("../templates/activation_start.html"),
    ),
    (
        "activation_sent.html",
        include_str!("../templates/activation_sent.html"),
    ),
    (
        "activation_password.html",
        include_str!("../templates/activation_password.html"),
    ),
    (
        "activation_done.html",
        include_str!("../templates/activation_done.html"),
    ),
    (
        "activation_identify.html",
        include_str!("../templates/activation_identify.html"),
    ),
    (
        "activation_choose.html",
        include_str!("../templates/activation_choose.html"),
    ),
    (
        "activation_confirm.html",
        include_str!("../templates/activation_confirm.html"),
    ),
    (
        "link_gone.html",
        include_str!("../templates/link_gone.html"),
    ),
    (
        "mail_invitation.txt",
        include_str!("../templates/mail_invitation.txt"),
    ),
    (
        "mail_invitation.html",
        include_str!("../templates/mail_invitation.html"),
    ),
    (
        "mail_email_confirmation.txt",
        include_str!("../templates/mail_email_confirmation.txt"),
    ),
    (
        "mail_email_confirmation.html",
        include_str!("../templates/mail_email_confirmation.html"),
    ),
    ("mail_base.txt", include_str!("../templates/mail_base.txt")),
    (
        "mail_base.html",
        include_str!("../templates/mail_base.html"),
    ),
    (
        "mail_activation_link.txt",
        include_str!("../templates/mail_activation_link.txt"),
    ),
    (
        "mail_activation_link.html",
        include_str!("../templates/mail_activation_link.html"),
    ),
    (
        "mail_account_activated.txt",
        include_str!("../templates/mail_account_activated.txt"),
    ),
    (
        "mail_account_activated.html",
        include_str!("../templates/mail_account_activated.html"),
    ),
];

pub struct Templates {
    env: Environment<'static>,
    catalog: Arc<Catalog>,
}

impl std::fmt::Debug for Templates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Templates")
    }
}

impl Templates {
    pub fn new(catalog: Arc<Catalog>, overrides: Option<PathBuf>) -> Templates {
        let mut env = Environment::new();
        env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
        env.set_loader(move |name| {
            if let Some(dir) = &overrides {
                let path = dir.join(name);
                if name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
                    && path.is_file()
                {
                    return std::fs::read_to_string(&path).map(Some).map_err(|e| {
                        minijinja::Error::new(minijinja::ErrorKind::TemplateNotFound, e.to_string())
                    });
                }
            }
            Ok(BUILTIN
                .iter()
                .find(|(builtin, _)| *builtin == name)
                .map(|(_, source)| (*source).to_owned()))
        });
        let texts = catalog.clone();
        env.add_function("t", move |state: &State, key: &str| {
            let lang = state
                .lookup("lang")
                .and_then(|v| v.as_str().and_then(Lang::from_code))
                .unwrap_or(Lang::Fr);
            texts.get(lang, key).map(str::to_owned).ok_or_else(|| {
                minijinja::Error::new(
                    minijinja::ErrorKind::UndefinedError,
                    format!("no text for key {key}"),
                )
            })
        });
        env.add_filter("datetime", datetime);
        let texts = catalog.clone();
        env.add_filter("duration", move |state: &State, seconds: u64| {
            let lang = state
                .lookup("lang")
                .and_then(|v| v.as_str().and_then(Lang::from_code))
                .unwrap_or(Lang::Fr);
            duration(&texts, lang, seconds).ok_or_else(|| {
                minijinja::Error::new(minijinja::ErrorKind::UndefinedError, "no duration texts")
            })
        });
        Templates { env, catalog }
    }

    /// Renders `name` with `ctx`, which must hold `lang` (a language code).
    pub fn render(&self, name: &str, ctx: Value) -> Result<String, minijinja::Error> {
        self.env.get_template(name)?.render(ctx)
    }

    /// One text of the catalogue, e.g. a mail subject.
    pub fn text(&self, lang: Lang, key: &str) -> Option<&str> {
        self.catalog.get(lang, key)
    }
}

/// A link's lifetime as students read it: `12 heures`, `1 heure 30 minutes`,
/// `45 minutes` (never `0 heures`), rounded down to the minute.
fn duration(catalog: &Catalog, lang: Lang, seconds: u64) -> Option<String> {
    let hours = seconds / 3600;
    // Under a minute still reads "1 minute", never nothing.
    let minutes = if hours == 0 {
        (seconds / 60).max(1)
    } else {
        seconds % 3600 / 60
    };
    let part = |n: u64, one: &str, many: &str| -> Option<String> {
        match n {
            0 => Some(String::new()),
            1 => catalog.get(lang, one).map(str::to_owned),
            n => catalog
                .get(lang, many)
                .map(|text| text.replace("{n}", &n.to_string())),
        }
    };
    let hours = part(hours, "duration.hour", "duration.hours")?;
    let minutes = part(minutes, "duration.minute", "duration.minutes")?;
    Some(format!("{hours} {minutes}").trim().to_owned())
}

/// Unix seconds as `2026-11-23 10:00 UTC`, for the helpdesk's diagnostic.
fn datetime(seconds: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(seconds)
        .ok()
        .and_then(|at| {
            at.format(time::macros::format_description!(
                "[year]-[month]-[day] [hour]:[minute] UTC"
            ))
            .ok()
        })
        .unwrap_or_else(|| seconds.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_catalogues_have_the_same_keys_and_no_empty_text() {
        let catalog = Catalog::builtin().unwrap();
        let mut fr: Vec<_> = catalog.fr.keys().collect();
        let mut en: Vec<_> = catalog.en.keys().collect();
        fr.sort();
        en.sort();
        assert_eq!(fr, en);
        for (key, text) in catalog.fr.iter().chain(catalog.en.iter()) {
            assert!(!text.trim().is_empty(), "{key} is empty");
        }
    }

    #[test]
    fn lifetimes_read_as_students_say_them() {
        let catalog = Catalog::builtin().unwrap();
        let fr = |seconds| duration(&catalog, Lang::Fr, seconds).unwrap();
        assert_eq!(fr(12 * 3600), "12 heures");
        assert_eq!(fr(3600), "1 heure");
        assert_eq!(fr(5400), "1 heure 30 minutes");
        assert_eq!(fr(1800), "30 minutes");
        assert_eq!(fr(60), "1 minute");
        assert_eq!(fr(20), "1 minute", "never 0");
        assert_eq!(
            duration(&catalog, Lang::En, 7260).unwrap(),
            "2 hours 1 minute"
        );
    }

    #[test]
    fn every_parse_error_has_a_message() {
        use crate::domain::ParseError::*;
        let catalog = Catalog::builtin().unwrap();
        for error in [
            Empty,
            TooLong,
            ControlCharacter,
            Email,
            Login,
            StudentId,
            Ine,
            AccountState,
            Token,
        ] {
            for lang in Lang::ALL {
                assert!(
                    catalog.get(lang, error.code()).is_some(),
                    "{} in {lang:?}",
                    error.code()
                );
            }
        }
    }

    #[test]
    fn french_texts_use_french_typography() {
        let catalog = Catalog::builtin().unwrap();
        for (key, text) in &catalog.fr {
            assert!(
                !text.contains('\''),
                "{key}: use the typographic apostrophe ’"
            );
            for (i, mark) in text.char_indices().filter(|(_, c)| "?!:;".contains(*c)) {
                let spaced = text[..i].ends_with([' ', '\u{a0}', '\u{202f}']);
                let in_url = text[i..].starts_with("://");
                assert!(spaced || in_url, "{key}: put a space before «{mark}»");
            }
        }
    }

    impl Catalog {
        fn has_prefix(&self, lang: Lang, prefix: &str) -> bool {
            let texts = match lang {
                Lang::Fr => &self.fr,
                Lang::En => &self.en,
            };
            texts.keys().any(|key| key.starts_with(prefix))
        }
    }

    /// Every `t("…")` in a template names a text that exists in both languages.
    #[test]
    fn every_text_key_used_in_templates_exists() {
        let catalog = Catalog::builtin().unwrap();
        for (name, source) in BUILTIN {
            for quote in ['"', '\''] {
                let opener = format!("t({quote}");
                for piece in source.split(&opener).skip(1) {
                    let key = piece.split(quote).next().unwrap();
                    for lang in Lang::ALL {
                        // `t("help.field." ~ field)`: the prefix of a family of keys.
                        let found = if key.ends_with('.') {
                            catalog.has_prefix(lang, key)
                        } else {
                            catalog.get(lang, key).is_some()
                        };
                        assert!(found, "{name}: {key} missing in {lang:?}");
                    }
                }
            }
        }
    }

    #[test]
    fn every_template_file_is_built_in() {
        for entry in std::fs::read_dir("templates").unwrap() {
            let name = entry.unwrap().file_name().into_string().unwrap();
            assert!(
                BUILTIN.iter().any(|(builtin, _)| *builtin == name),
                "{name} is not in BUILTIN"
            );
        }
    }
}
