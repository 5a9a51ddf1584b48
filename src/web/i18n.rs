//! The two catalogues of page texts and the choice of language for each request:
//! `?lang=` (remembered in a cookie), then the cookie, then the profile's default.

use std::collections::HashMap;

use axum::extract::{Request, State};
use axum::http::HeaderValue;
use axum::http::header::{COOKIE, SET_COOKIE};
use axum::middleware::Next;
use axum::response::Response;

use super::AppState;
use crate::config::Lang;

const COOKIE_NAME: &str = "guichet_lang";

#[derive(Debug)]
pub struct Catalog {
    fr: HashMap<String, String>,
    en: HashMap<String, String>,
}

impl Catalog {
    /// The catalogues built into the binary from `locales/`.
    pub fn builtin() -> Result<Catalog, toml::de::Error> {
        Ok(Catalog {
            fr: toml::from_str(include_str!("../../locales/fr.toml"))?,
            en: toml::from_str(include_str!("../../locales/en.toml"))?,
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

/// The language of the current request, set by `choose_language`.
#[derive(Debug, Clone, Copy)]
pub struct Locale(pub Lang);

pub async fn choose_language(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Response {
    let from_query = request
        .uri()
        .query()
        .and_then(|q| url::form_urlencoded::parse(q.as_bytes()).find(|(k, _)| k == "lang"))
        .and_then(|(_, v)| Lang::from_code(&v));
    let from_cookie = request
        .headers()
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE_NAME)
        .and_then(|(_, v)| Lang::from_code(v));
    let lang = from_query
        .or(from_cookie)
        .unwrap_or(state.settings.profile.languages.default);
    request.extensions_mut().insert(Locale(lang));
    let mut response = next.run(request).await;
    if from_query.is_some() && from_query != from_cookie {
        let secure = if state.settings.secure_cookies() {
            "; Secure"
        } else {
            ""
        };
        let cookie = format!(
            "{COOKIE_NAME}={}; Path=/; Max-Age=31536000; SameSite=Lax; HttpOnly{secure}",
            lang.code()
        );
        if let Ok(value) = HeaderValue::from_str(&cookie) {
            response.headers_mut().append(SET_COOKIE, value);
        }
    }
    response
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
    fn every_parse_error_has_a_message() {
        use crate::domain::ParseError::*;
        let catalog = Catalog::builtin().unwrap();
        for error in [
            Empty,
            TooLong,
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
}
