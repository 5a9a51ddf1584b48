//! The dev mailbox: the `.eml` files the file transport writes, listed newest first,
//! for the `/dev/mail` pages of `guichet dev`.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use mail_parser::MessageParser;
use serde::Serialize;

#[derive(Debug, Serialize)]
pub struct Summary {
    pub id: String,
    pub to: String,
    pub subject: String,
    pub date: String,
}

#[derive(Debug, Serialize)]
pub struct Letter {
    pub summary: Summary,
    pub text: String,
    pub html: Option<String>,
}

/// An id is the file stem the file transport chose (a UUID); anything else could
/// climb out of the folder and is refused.
fn path_of(dir: &Path, id: &str) -> Option<PathBuf> {
    let safe =
        !id.is_empty() && id.len() <= 64 && id.chars().all(|c| c.is_ascii_hexdigit() || c == '-');
    safe.then(|| dir.join(format!("{id}.eml")))
}

pub fn list(dir: &Path) -> std::io::Result<Vec<Summary>> {
    let mut files: Vec<(SystemTime, PathBuf)> = match std::fs::read_dir(dir) {
        Ok(entries) => entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "eml"))
            .filter_map(|p| Some((p.metadata().ok()?.modified().ok()?, p)))
            .collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(e),
    };
    files.sort_by_key(|f| std::cmp::Reverse(f.0));
    Ok(files
        .into_iter()
        .filter_map(|(_, path)| {
            let id = path.file_stem()?.to_str()?.to_owned();
            let raw = std::fs::read(&path).ok()?;
            Some(summarize(id, &raw))
        })
        .collect())
}

pub fn read(dir: &Path, id: &str) -> std::io::Result<Option<Letter>> {
    let Some(path) = path_of(dir, id) else {
        return Ok(None);
    };
    let raw = match std::fs::read(&path) {
        Ok(raw) => raw,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let parsed = MessageParser::default().parse(&raw);
    Ok(Some(Letter {
        summary: summarize(id.to_owned(), &raw),
        text: parsed
            .as_ref()
            .and_then(|m| m.body_text(0))
            .map(|t| t.into_owned())
            .unwrap_or_default(),
        html: parsed
            .as_ref()
            .and_then(|m| m.body_html(0))
            .map(|t| t.into_owned()),
    }))
}

fn summarize(id: String, raw: &[u8]) -> Summary {
    let parsed = MessageParser::default().parse(raw);
    let to = parsed
        .as_ref()
        .and_then(|m| m.to())
        .and_then(|a| a.first())
        .and_then(|a| a.address())
        .unwrap_or_default()
        .to_owned();
    Summary {
        id,
        to,
        subject: parsed
            .as_ref()
            .and_then(|m| m.subject())
            .unwrap_or_default()
            .to_owned(),
        date: parsed
            .as_ref()
            .and_then(|m| m.date())
            .map(|d| d.to_rfc3339())
            .unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_cannot_leave_the_folder() {
        let dir = Path::new("/tmp/mail");
        assert!(path_of(dir, "../../etc/passwd").is_none());
        assert!(path_of(dir, "").is_none());
        assert!(path_of(dir, "0b7c6f1e-1c0a-4d2e-9f00-1234567890ab").is_some());
    }
}
