//! Test data: the sizes at which pipe behaviour changes (named so that cases read as a rubric),
//! payloads that reveal lost or reordered bytes, and a comparison that says where they differ.

/// Bytes a pipe write is guaranteed to be atomic for (POSIX `PIPE_BUF`, 4096 on Linux).
pub const PIPE_BUF: usize = libc::PIPE_BUF;

/// Default capacity of a Linux pipe: a writer blocks once this much is unread.
pub const PIPE_CAPACITY: usize = 64 * 1024;

/// One mebibyte, for transfers well past the pipe's capacity.
pub const MIB: usize = 1024 * 1024;

/// A deterministic, non-repeating-looking payload: a transfer that drops, duplicates or reorders
/// bytes changes it, which a run of one repeated byte would hide.
pub fn payload(len: usize) -> Vec<u8> {
    let mut state: u32 = 0x9e37_79b9;
    (0..len)
        .map(|_| {
            // xorshift32: cheap and good enough to make every 4-byte window distinct in practice.
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            (state >> 24) as u8
        })
        .collect()
}

/// Asserts that `actual` equals `expected`, and otherwise says how they differ (lengths, first
/// differing offset) instead of printing megabytes of bytes.
#[track_caller]
pub fn assert_same_bytes(actual: &[u8], expected: &[u8], what: &str) {
    if actual == expected {
        return;
    }
    let first_diff = actual.iter().zip(expected).position(|(a, e)| a != e);
    let detail = match first_diff {
        Some(at) => format!(
            "first difference at byte {at} (got {:#04x}, expected {:#04x})",
            actual[at], expected[at]
        ),
        None if actual.len() < expected.len() => format!(
            "the first {} bytes are right, then it stops: {} bytes missing",
            actual.len(),
            expected.len() - actual.len()
        ),
        None => format!(
            "all {} expected bytes are right, then {} extra bytes follow",
            expected.len(),
            actual.len() - expected.len()
        ),
    };
    panic!(
        "{what}: got {} bytes, expected {}; {detail}",
        actual.len(),
        expected.len()
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_is_deterministic_and_varied() {
        assert_eq!(payload(64), payload(64));
        let p = payload(4096);
        assert!(p.windows(2).any(|w| w[0] != w[1]));
        assert_eq!(payload(0), Vec::<u8>::new());
    }

    #[test]
    #[should_panic(expected = "2 bytes missing")]
    fn short_data_is_described() {
        assert_same_bytes(b"ab", b"abcd", "message");
    }
}
