//! Strategies for the hostile-input properties: text near a parser's alphabet, with
//! what breaks parsers mixed in (multi-byte and combining characters, controls, BOM,
//! very long runs).

use proptest::prelude::*;
use proptest::test_runner::Config;

/// `n` cases per property, unless `PROPTEST_CASES` asks for another number.
pub fn cases(n: u32) -> Config {
    let asked = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok());
    Config::with_cases(asked.unwrap_or(n))
}

/// Characters that a byte-slicing or ASCII-only parser trips on.
const TRAPS: &str = "é€😀\u{301}\u{feff}\u{a0}\u{202e}\u{0}\u{7f}\t\r\n ";

/// Strings over `alphabet` (a regex character class body, such as `a-z0-9.`) mixed
/// with `TRAPS`, short or very long, or any string at all.
pub fn near(alphabet: &str) -> impl Strategy<Value = String> + use<> {
    let class = |repeat: &str, extra: &str| {
        proptest::string::string_regex(&format!("[{alphabet}{extra}]{repeat}")).unwrap()
    };
    prop_oneof![
        4 => class("{0,40}", TRAPS),
        3 => class("{0,24}", ""),
        2 => any::<String>(),
        1 => class("{200,600}", "é"),
    ]
}
