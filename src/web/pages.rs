//! HTML pages: templates rendered with the page frame (institution, support address,
//! language, request id).

use axum::response::Html;
use minijinja::{Value, context};

use super::error::WebError;
use crate::config::Profile;
use crate::domain::Lang;
use crate::templates::Templates;

/// What every page shows besides its own content.
#[derive(Debug, Clone)]
pub struct PageFrame {
    pub lang: Lang,
    pub request_id: Option<String>,
    /// The value forms repeat in their hidden `csrf` field.
    pub csrf: Option<String>,
    /// Where the language switch leads, without its `lang` parameter: the same
    /// page, its query (a link's token) included.
    pub here: String,
}

impl PageFrame {
    /// The language switch's target: `here` with `lang` set to `lang`.
    fn switch_href(&self, lang: Lang) -> String {
        let separator = if self.here.contains('?') { '&' } else { '?' };
        format!("{}{separator}lang={}", self.here, lang.code())
    }
}

/// Renders `name` with the page frame and the page's own values.
pub fn render(
    templates: &Templates,
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
        switch_href => frame.switch_href(other),
        institution => profile.institution.get(frame.lang),
        support_email => profile.support.email.as_str(),
        logo_url => profile.branding.logo_url.as_deref(),
        request_id => frame.request_id.as_deref(),
        csrf => frame.csrf.as_deref(),
        ..page
    };
    templates
        .render(name, ctx)
        .map(Html)
        .map_err(|e| WebError::Internal(format!("template {name}: {e:#}")))
}
