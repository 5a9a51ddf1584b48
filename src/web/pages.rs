//! HTML pages: minijinja templates built into the binary, with `t("key")` for texts
//! in the request's language. An institution may override any template by putting a
//! file of the same name in `server.templates_dir`.

use std::path::PathBuf;
use std::sync::Arc;

use axum::response::Html;
use minijinja::{Environment, State, Value, context};

use super::error::WebError;
use super::i18n::Catalog;
use crate::config::{Lang, Profile};

/// The built-in templates, by name.
const BUILTIN: &[(&str, &str)] = &[
    ("base.html", include_str!("../../templates/base.html")),
    ("home.html", include_str!("../../templates/home.html")),
    ("error.html", include_str!("../../templates/error.html")),
    (
        "dev_mail_list.html",
        include_str!("../../templates/dev_mail_list.html"),
    ),
    (
        "dev_mail_show.html",
        include_str!("../../templates/dev_mail_show.html"),
    ),
];

pub struct Pages {
    env: Environment<'static>,
}

impl std::fmt::Debug for Pages {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Pages")
    }
}

/// What every page shows: the institution, its support address and the language.
#[derive(Debug, Clone)]
pub struct PageFrame {
    pub lang: Lang,
    pub request_id: Option<String>,
}

impl Pages {
    pub fn new(catalog: Arc<Catalog>, overrides: Option<PathBuf>) -> Pages {
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
        env.add_function("t", move |state: &State, key: &str| {
            let lang = state
                .lookup("lang")
                .and_then(|v| v.as_str().and_then(Lang::from_code))
                .unwrap_or(Lang::Fr);
            catalog.get(lang, key).map(str::to_owned).ok_or_else(|| {
                minijinja::Error::new(
                    minijinja::ErrorKind::UndefinedError,
                    format!("no text for key {key}"),
                )
            })
        });
        Pages { env }
    }

    /// Renders `name` with the page frame and the page's own values.
    pub fn render(
        &self,
        name: &str,
        profile: &Profile,
        frame: &PageFrame,
        page: Value,
    ) -> Result<Html<String>, WebError> {
        let other = match frame.lang {
            Lang::Fr => Lang::En,
            Lang::En => Lang::Fr,
        };
        let ctx = context! {
            lang => frame.lang.code(),
            other_lang => other.code(),
            institution => profile.institution.get(frame.lang),
            support_email => profile.support.email.as_str(),
            logo_url => profile.branding.logo_url.as_deref(),
            request_id => frame.request_id.as_deref(),
            ..page
        };
        self.env
            .get_template(name)
            .and_then(|template| template.render(ctx))
            .map(Html)
            .map_err(|e| WebError::Internal(format!("template {name}: {e:#}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
                        assert!(
                            catalog.get(lang, key).is_some(),
                            "{name}: {key} missing in {lang:?}"
                        );
                    }
                }
            }
        }
    }
}
