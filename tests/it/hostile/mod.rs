//! Hostile input, generated (issue 14): every parser of outside input is fed
//! arbitrary and near-valid input. Each property asserts that nothing panics, that a
//! refusal is the parser's typed error, and that what a parser accepts is a value it
//! would accept again unchanged. Cases per property stay in the hundreds so the set
//! runs in seconds; `PROPTEST_CASES` raises them locally.

mod domain;
mod import;
mod jwt;
mod oidc;
