//! The registration office's CSV export: any bytes give a file-level error or a
//! report in which every row is either a student or a numbered problem.

use guichet::flows::import::{ImportFileError, ParsedFile, parse};
use proptest::prelude::*;

use crate::common::hostile::{cases, near};

const HEADER: [&str; 6] = [
    "student_number",
    "ine",
    "given_name",
    "surname",
    "personal_email",
    "login",
];

/// A row the office would send: every field well-formed.
fn good_row() -> impl Strategy<Value = Vec<String>> {
    (
        "[0-9]{8}",
        "[0-9]{10}[A-Z]",
        "[A-Za-zéèçÉ' -]{0,20}[A-Za-zé]",
        "[A-Za-zéèçÉ' -]{0,20}[A-Za-zé]",
        "[a-z0-9+_-]{1,10}(\\.[a-z0-9+_-]{1,5})?@[a-z0-9]{1,12}\\.(fr|org|com)",
        prop_oneof![Just(String::new()), "[a-z][a-z0-9._-]{0,15}"],
    )
        .prop_map(|(id, ine, given, surname, email, login)| {
            vec![id, ine, given, surname, email, login]
        })
}

/// A row with anything in its fields: quotes, separators, line breaks, BOMs,
/// multi-byte characters, very long values, too few or too many fields (two at
/// least: a row of one empty field is a blank line, which is no row).
fn hostile_row() -> impl Strategy<Value = Vec<String>> {
    proptest::collection::vec(near("a-zA-Z0-9@.;,\"'\\-"), 2..9)
}

/// A file as a spreadsheet writes it: the chosen separator and line ending, maybe
/// a BOM, fields quoted where they must be.
fn file(rows: &[(bool, Vec<String>)], separator: u8, crlf: bool, bom: bool) -> Vec<u8> {
    let terminator = if crlf {
        csv::Terminator::CRLF
    } else {
        csv::Terminator::Any(b'\n')
    };
    let mut writer = csv::WriterBuilder::new()
        .delimiter(separator)
        .terminator(terminator)
        .flexible(true)
        .from_writer(if bom {
            b"\xef\xbb\xbf".to_vec()
        } else {
            Vec::new()
        });
    writer.write_record(HEADER).unwrap();
    for (_, row) in rows {
        writer.write_record(row).unwrap();
    }
    writer.into_inner().unwrap()
}

proptest! {
    #![proptest_config(cases(512))]

    #[test]
    fn any_bytes_give_a_file_error_or_a_report(bytes in prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..2000),
        near("a-z_;,\"\n\r").prop_map(String::into_bytes),
    ]) {
        let with_header = [HEADER.join(",").as_bytes(), b"\n", &bytes].concat();
        for input in [&bytes[..], &with_header[..]] {
            match parse(input) {
                Ok(ParsedFile { rows, rejected }) => {
                    let lines: Vec<u64> = rows.iter().map(|(l, _)| *l).chain(rejected.iter().map(|(l, _)| *l)).collect();
                    prop_assert!(lines.iter().all(|&l| l >= 2), "a row is never on the header's line: {lines:?}");
                    prop_assert!(rejected.iter().all(|(_, problem)| !problem.is_empty()));
                }
                Err(ImportFileError::NoHeader | ImportFileError::MissingColumns(_) | ImportFileError::Unreadable(_)) => {}
            }
        }
    }

    #[test]
    fn every_row_is_imported_or_reported_on_its_own_line(
        rows in proptest::collection::vec(prop_oneof![
            3 => good_row().prop_map(|r| (true, r)),
            2 => hostile_row().prop_map(|r| (false, r)),
        ], 0..25),
        semicolons in any::<bool>(), crlf in any::<bool>(), bom in any::<bool>(),
    ) {
        let bytes = file(&rows, if semicolons { b';' } else { b',' }, crlf, bom);
        let parsed = parse(&bytes);
        prop_assert!(parsed.is_ok(), "{parsed:?}");
        let ParsedFile { rows: imported, rejected } = parsed.unwrap_or_default();
        let expected = rows.len();
        prop_assert_eq!(imported.len() + rejected.len(), expected, "rows lost or doubled");
        let mut lines: Vec<u64> = imported.iter().map(|(l, _)| *l).chain(rejected.iter().map(|(l, _)| *l)).collect();
        lines.sort_unstable();
        lines.dedup();
        prop_assert_eq!(lines.len(), expected, "each row has its own line number");
        let good: Vec<&Vec<String>> = rows.iter().filter(|(good, _)| *good).map(|(_, row)| row).collect();
        for row in good {
            let found = imported.iter().any(|(_, s)| {
                s.student_id.as_str() == row[0] && s.ine.as_str() == row[1]
                    && s.given_name == row[2].trim() && s.surname == row[3].trim()
                    && s.personal_email.as_str() == row[4]
                    && s.login.as_str() == if row[5].is_empty() { &row[0] } else { &row[5] }
            });
            prop_assert!(found, "a good row was not imported as written: {row:?}");
        }
    }
}

#[test]
fn a_row_saved_as_latin_1_is_reported_on_its_line_and_the_others_are_imported() {
    let mut bytes = format!("{}\n", HEADER.join(";")).into_bytes();
    bytes.extend_from_slice(b"22500001;1234567890A;L\xe9a;Durand;lea@example.org;\n");
    bytes.extend_from_slice("22500002;1234567890B;Théo;Martin;theo@example.org;\n".as_bytes());
    let ParsedFile { rows, rejected } = parse(&bytes).unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].0, 3);
    assert_eq!(rejected.len(), 1);
    assert_eq!(rejected[0].0, 2);
    assert!(rejected[0].1.contains("not UTF-8"), "{rejected:?}");
}

#[test]
fn a_name_with_a_control_character_is_refused_as_such_not_as_too_long() {
    let text = format!(
        "{}\n22500001,1234567890A,\"L\u{7}a\",Durand,lea@example.org,\n",
        HEADER.join(",")
    );
    let ParsedFile { rejected, .. } = parse(text.as_bytes()).unwrap();
    assert_eq!(rejected.len(), 1);
    assert!(
        rejected[0]
            .1
            .contains("given_name: the value holds a control character"),
        "{rejected:?}"
    );
}
