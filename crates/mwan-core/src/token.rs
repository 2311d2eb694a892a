//! The write token of mwand's HTTP API, compared so that the time taken
//! says nothing of how much of a guess was right.

/// Equal strings in a time that depends on their lengths only.
pub fn same_token(given: &str, expected: &str) -> bool {
    let (a, b) = (given.as_bytes(), expected.as_bytes());
    let mut diff = u8::from(a.len() != b.len());
    for i in 0..a.len().max(b.len()) {
        diff |= a.get(i).copied().unwrap_or(0) ^ b.get(i).copied().unwrap_or(0xff);
    }
    diff == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_compare_whole() {
        let cases = [
            ("equal", "abc", "abc", true),
            ("last byte differs", "abd", "abc", false),
            ("first byte differs", "xbc", "abc", false),
            ("a prefix", "ab", "abc", false),
            ("longer", "abcd", "abc", false),
            ("empty given", "", "abc", false),
            ("empty both", "", "", true),
            // Past the shorter end a byte compares with 0 on one side and
            // 0xff on the other, and the lengths differ: never equal.
            ("a NUL past the end", "abc\0", "abc", false),
            ("case counts", "ABC", "abc", false),
        ];
        for (what, given, expected, want) in cases {
            assert_eq!(same_token(given, expected), want, "{what}");
        }
    }
}
