//! `guichet import FILE.csv`: registrations exported by the student information
//! system become directory entries awaiting activation. Idempotent on the student
//! number: a known student is updated, an unknown one created. Every bad row is
//! reported with its line number; the good rows are imported all the same.
//!
//! Columns (header row, `;` or `,`, any order, case-insensitive): `student_number`,
//! `ine`, `given_name`, `surname`, `personal_email`, and optionally `login` (when
//! absent or empty, the login is the student number, as at Sorbonne).

use std::collections::HashMap;

use super::FlowError;
use crate::config::Profile;
use crate::directory::{Directory, NewStudent};
use crate::domain::{AccountState, Email, Ine, Login, ParseError, StudentId};

const REQUIRED: [&str; 5] = [
    "student_number",
    "ine",
    "given_name",
    "surname",
    "personal_email",
];
const MAX_NAME: usize = 128;

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ImportReport {
    pub created: usize,
    pub updated: usize,
    pub unchanged: usize,
    /// (line number in the file, what is wrong)
    pub rejected: Vec<(u64, String)>,
}

/// A file that cannot be read as CSV at all (as opposed to bad rows).
#[derive(Debug, thiserror::Error)]
pub enum ImportFileError {
    #[error("the file has no header row")]
    NoHeader,
    #[error("missing column(s): {0}")]
    MissingColumns(String),
    #[error("not a readable CSV file: {0}")]
    Unreadable(String),
}

/// The file read: every row is either a student or a problem, with its line number.
#[derive(Debug, Default)]
pub struct ParsedFile {
    pub rows: Vec<(u64, NewStudent)>,
    pub rejected: Vec<(u64, String)>,
}

/// The UTF-8 byte order mark that spreadsheet programs put before an export.
const BOM: &[u8] = b"\xef\xbb\xbf";

/// Parses the whole file: every row either becomes a `NewStudent` or an error line.
/// The file is taken as bytes: a row that is not UTF-8 (an export saved as Latin-1
/// or Windows-1252) is reported on its own line instead of refusing the whole file.
pub fn parse(file: &[u8]) -> Result<ParsedFile, ImportFileError> {
    let file = file.strip_prefix(BOM).unwrap_or(file);
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(delimiter(file)?)
        .trim(csv::Trim::All)
        .flexible(true)
        .from_reader(file);
    let column = columns(&mut reader)?;
    let mut parsed = ParsedFile::default();
    for record in reader.records() {
        let record = match record {
            Ok(record) => record,
            Err(e) => {
                let line = e.position().map_or(0, |p| p.line());
                parsed.rejected.push((line, unreadable(&e)));
                continue;
            }
        };
        let line = record.position().map_or(0, |p| p.line());
        let fields: HashMap<&str, &str> = REQUIRED
            .iter()
            .chain(&["login"])
            .map(|&name| {
                (
                    name,
                    column
                        .get(name)
                        .and_then(|&i| record.get(i))
                        .unwrap_or("")
                        .trim(),
                )
            })
            .collect();
        match student(&fields) {
            Ok(student) => parsed.rows.push((line, student)),
            Err(problems) => parsed.rejected.push((line, problems.join("; "))),
        }
    }
    Ok(parsed)
}

/// `;` when the header row (the first line that is not blank, as for the CSV
/// reader) has more of them than commas, else `,`.
fn delimiter(file: &[u8]) -> Result<u8, ImportFileError> {
    let first_line = file
        .split(|&b| b == b'\n')
        .find(|line| !line.trim_ascii().is_empty())
        .ok_or(ImportFileError::NoHeader)?;
    let count = |wanted: u8| first_line.iter().filter(|&&b| b == wanted).count();
    Ok(if count(b';') > count(b',') {
        b';'
    } else {
        b','
    })
}

/// Where each column is, by lower-case name; every required one must be there.
fn columns(reader: &mut csv::Reader<&[u8]>) -> Result<HashMap<String, usize>, ImportFileError> {
    let headers = reader
        .headers()
        .map_err(|e| ImportFileError::Unreadable(e.to_string()))?;
    let column: HashMap<String, usize> = headers
        .iter()
        .enumerate()
        .map(|(i, h)| (h.trim().to_ascii_lowercase(), i))
        .collect();
    let missing: Vec<&str> = REQUIRED
        .iter()
        .copied()
        .filter(|c| !column.contains_key(*c))
        .collect();
    if !missing.is_empty() {
        return Err(ImportFileError::MissingColumns(missing.join(", ")));
    }
    Ok(column)
}

/// What the operator reads for a row the CSV reader could not take.
fn unreadable(error: &csv::Error) -> String {
    match error.kind() {
        csv::ErrorKind::Utf8 { .. } => {
            "unreadable row: not UTF-8 text (export the file as UTF-8)".to_owned()
        }
        _ => format!("unreadable row: {error}"),
    }
}

fn student(fields: &HashMap<&str, &str>) -> Result<NewStudent, Vec<String>> {
    let field = |name: &str| fields.get(name).copied().unwrap_or("");
    let mut problems = Vec::new();
    let mut check = |name: &str, result: Result<(), ParseError>| {
        if let Err(e) = result {
            problems.push(format!("{name}: {e}"));
        }
    };
    let student_id = field("student_number").parse::<StudentId>();
    check(
        "student_number",
        student_id.as_ref().map(|_| ()).map_err(|e| *e),
    );
    let ine = field("ine").parse::<Ine>();
    check("ine", ine.as_ref().map(|_| ()).map_err(|e| *e));
    let email = field("personal_email").parse::<Email>();
    check("personal_email", email.as_ref().map(|_| ()).map_err(|e| *e));
    let login = match field("login") {
        "" => field("student_number").parse::<Login>(),
        given => given.parse::<Login>(),
    };
    check("login", login.as_ref().map(|_| ()).map_err(|e| *e));
    let name = |key: &str| {
        let value = field(key);
        if value.is_empty() {
            Err(ParseError::Empty)
        } else if value.chars().count() > MAX_NAME {
            Err(ParseError::TooLong)
        } else if value.chars().any(char::is_control) {
            Err(ParseError::ControlCharacter)
        } else {
            Ok(value.to_owned())
        }
    };
    let (given_name, surname) = (name("given_name"), name("surname"));
    check(
        "given_name",
        given_name.as_ref().map(|_| ()).map_err(|e| *e),
    );
    check("surname", surname.as_ref().map(|_| ()).map_err(|e| *e));
    match (student_id, ine, email, login, given_name, surname) {
        (Ok(student_id), Ok(ine), Ok(personal_email), Ok(login), Ok(given_name), Ok(surname)) => {
            Ok(NewStudent {
                login,
                student_id,
                ine,
                given_name,
                surname,
                personal_email,
            })
        }
        _ => Err(problems),
    }
}

/// Creates or updates the good rows; a row the directory refuses is reported too.
pub async fn apply(
    directory: &Directory,
    profile: &Profile,
    file: ParsedFile,
) -> Result<ImportReport, FlowError> {
    let ParsedFile { rows, mut rejected } = file;
    let mut report = ImportReport::default();
    // Awaiting states were checked at start-up: they parse.
    let new_state = profile
        .activation
        .awaiting_states
        .first()
        .and_then(|s| format!("{{COMPTE}}{s}").parse::<AccountState>().ok())
        .unwrap_or_else(AccountState::created);
    for (line, student) in rows {
        let existing = directory.find_by_student_id(&student.student_id).await?;
        let outcome = match existing.as_slice() {
            [] => directory
                .add_student(&student, &new_state)
                .await
                .map(|()| Outcome::Created),
            [account] if account.login != student.login => {
                rejected.push((
                    line,
                    format!(
                        "login: the directory has {} for this student number",
                        account.login
                    ),
                ));
                continue;
            }
            [account] => {
                let awaiting = account
                    .state
                    .as_ref()
                    .is_some_and(|s| profile.activation.awaiting_states.contains(&s.short()));
                directory
                    .update_student(account, &student, awaiting)
                    .await
                    .map(|changed| {
                        if changed {
                            Outcome::Updated
                        } else {
                            Outcome::Unchanged
                        }
                    })
            }
            _ => {
                rejected.push((
                    line,
                    "student_number: several directory entries have it".to_owned(),
                ));
                continue;
            }
        };
        match outcome {
            Ok(Outcome::Created) => report.created += 1,
            Ok(Outcome::Updated) => report.updated += 1,
            Ok(Outcome::Unchanged) => report.unchanged += 1,
            Err(e) if e.is_transient() => return Err(e.into()),
            Err(e) => rejected.push((line, format!("refused by the directory: {e}"))),
        }
    }
    rejected.sort_by_key(|(line, _)| *line);
    report.rejected = rejected;
    Ok(report)
}

enum Outcome {
    Created,
    Updated,
    Unchanged,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn good_rows_parse_and_bad_rows_are_reported_with_their_line() {
        let text = "\u{feff}student_number;ine;given_name;surname;personal_email;login\n\
                    22500001;1234567890a;Léa;Durand;lea@example.org;\n\
                    22500002;12345;Théo;Martin;theo@example.org;tmartin\n\
                    22500003;123456789AB;;Petit;not-an-email;\n\
                    22500004;123456789CD;Zoé;O'Brien (Dupont*);zoe@example.org;z*\n";
        let ParsedFile {
            rows: good,
            rejected: bad,
        } = parse(text.as_bytes()).unwrap();
        assert_eq!(good.len(), 1);
        assert_eq!(good[0].0, 2);
        assert_eq!(good[0].1.login.as_str(), "22500001");
        assert_eq!(good[0].1.ine.as_str(), "1234567890A");
        let lines: Vec<u64> = bad.iter().map(|(l, _)| *l).collect();
        assert_eq!(lines, vec![3, 4, 5]);
        assert!(bad[0].1.contains("ine"), "{bad:?}");
        assert!(bad[1].1.contains("given_name") && bad[1].1.contains("personal_email"));
        assert!(bad[2].1.contains("login"));
    }

    #[test]
    fn commas_work_and_missing_columns_are_named() {
        let ParsedFile { rows: good, rejected: bad } = parse("ine,student_number,surname,given_name,personal_email\n1234567890A,22500001,Durand,Léa,lea@example.org\n".as_bytes()).unwrap();
        assert_eq!((good.len(), bad.len()), (1, 0));
        let error = parse(b"student_number;ine\n1;2\n").unwrap_err();
        assert!(
            error
                .to_string()
                .contains("given_name, surname, personal_email"),
            "{error}"
        );
        assert!(matches!(parse(b""), Err(ImportFileError::NoHeader)));
    }
}
