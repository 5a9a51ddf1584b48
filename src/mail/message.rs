//! Turns an outbox row into a finished message: subject from the catalogue, a text
//! and an HTML part from the templates, in the row's language.

use lettre::Message;
use lettre::message::{Mailbox, MultiPart};
use minijinja::{Value, context};

use super::MailError;
use crate::config::Profile;
use crate::domain::Lang;
use crate::store::Claimed;
use crate::templates::Templates;

/// The host part of our Message-IDs: receivers can tell a retry of the same outbox
/// row by its Message-ID.
const MESSAGE_ID_DOMAIN: &str = "guichet.invalid";

/// A link's lifetime in seconds. Link mails queued by an earlier version (or by
/// another instance during a rolling upgrade) give it as `hours`: without reading
/// those, they would fail to render and be given up.
fn lifetime(payload: &serde_json::Value) -> Option<u64> {
    let hours = &payload["hours"];
    payload["lifetime"].as_u64().or_else(|| {
        hours
            .as_u64()
            .or_else(|| hours.as_str()?.parse().ok())
            .map(|hours| hours * 3600)
    })
}

pub fn build(
    templates: &Templates,
    profile: &Profile,
    from: &Mailbox,
    mail: &Claimed,
) -> Result<Message, MailError> {
    let lang = Lang::from_code(&mail.lang).unwrap_or(profile.languages.default);
    let subject = templates
        .text(lang, &format!("mail.{}.subject", mail.kind))
        .ok_or_else(|| MailError::Render(format!("no subject for mail kind {}", mail.kind)))?
        .to_owned();
    let ctx = context! {
        lang => lang.code(),
        subject => &subject,
        institution => profile.institution.get(lang),
        support_email => profile.support.email.as_str(),
        primary_color => profile.branding.primary_color.as_str(),
        lifetime => lifetime(&mail.payload),
        ..Value::from_serialize(&mail.payload)
    };
    let render = |ext: &str| {
        templates
            .render(&format!("mail_{}.{ext}", mail.kind), ctx.clone())
            .map_err(|e| MailError::Render(format!("mail {} ({ext}): {e:#}", mail.kind)))
    };
    let (text, html) = (render("txt")?, render("html")?);
    let to: Mailbox = mail
        .recipient
        .parse()
        .map_err(|e| MailError::Permanent(format!("recipient refused: {e}")))?;
    Message::builder()
        .from(from.clone())
        .to(to)
        .subject(subject)
        .message_id(Some(format!("<{}@{MESSAGE_ID_DOMAIN}>", mail.id)))
        .multipart(MultiPart::alternative_plain_html(text, html))
        .map_err(|e| MailError::Render(e.to_string()))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::templates::Catalog;

    fn profile() -> Profile {
        let text = std::fs::read_to_string("profiles/sorbonne.toml").unwrap();
        let value: toml::Value = toml::from_str(&text).unwrap();
        value["profile"].clone().try_into().unwrap()
    }

    #[test]
    fn every_mail_kind_renders_in_both_languages() {
        let templates = Templates::new(Arc::new(Catalog::builtin().unwrap()), None);
        let from: Mailbox = "Sorbonne <no_reply@univ-demo.fr>".parse().unwrap();
        let payload = serde_json::json!({
            "name": "Léa Durand", "login": "ldurand", "lifetime": 2700,
            "link": "https://compte.univ-demo.fr/activation/abc",
            "new_email": "l***@example.org", "when": "1 décembre 2026 à 10:00",
            "help_url": "https://compte.univ-demo.fr/help",
            "email": "famille@example.org", "logins": ["jumeau1", "jumeau2"],
            "typed": "famille@example.org",
        });
        for kind in [
            "activation_link",
            "account_activated",
            "invitation",
            "email_confirmation",
            "reset_link",
            "password_changed",
            "email_change_link",
            "email_change_taken",
            "email_change_requested",
            "email_changed",
            "support_ambiguous",
            "support_shared_address",
        ] {
            for lang in ["fr", "en"] {
                let mail = Claimed::for_test(kind, lang, payload.clone());
                let message = build(&templates, &profile(), &from, &mail)
                    .unwrap_or_else(|e| panic!("{kind} in {lang}: {e}"));
                let raw = String::from_utf8(message.formatted()).unwrap();
                assert!(raw.contains("Message-ID: <"), "{raw}");
                assert!(raw.contains("multipart/alternative"));
            }
        }
        // A link mail queued by an earlier version, with `hours`, still goes out.
        let legacy = Claimed::for_test(
            "reset_link",
            "fr",
            serde_json::json!({ "name": "Léa", "login": "ldurand", "hours": 12, "link": "https://x/y" }),
        );
        let message = build(&templates, &profile(), &from, &legacy).unwrap();
        let raw = String::from_utf8(message.formatted()).unwrap();
        assert!(raw.contains("12 heures"), "{raw}");
        let unknown = Claimed::for_test("no_such_kind", "fr", serde_json::json!({}));
        assert!(matches!(
            build(&templates, &profile(), &from, &unknown),
            Err(MailError::Render(_))
        ));
    }
}
