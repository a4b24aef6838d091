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

/// What the test process received, as the judge needs it: a digest and a length instead of the
/// bytes (an observation must stay small), and, when the bytes are wrong, how they differ.
///
/// Built on the untrusted side with [`Received::of`]; checked by the judge with
/// [`Received::assert_matches`], which recomputes the expected digest itself: a forged
/// `Received` must carry the right digest, which only the right bytes give.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Received {
    pub len: usize,
    pub digest: u64,
    /// How `actual` differed from what the test expected, if it did.
    pub difference: Option<String>,
}

impl Received {
    pub fn of(actual: &[u8], expected: &[u8]) -> Received {
        Received {
            len: actual.len(),
            digest: digest(actual),
            difference: std::panic::catch_unwind(|| assert_same_bytes(actual, expected, "bytes"))
                .err()
                .map(|p| {
                    p.downcast_ref::<String>()
                        .cloned()
                        .unwrap_or_else(|| "they differ".into())
                }),
        }
    }

    /// Panics with `what` and the difference unless these are exactly `expected`'s bytes.
    #[track_caller]
    pub fn assert_matches(&self, expected: &[u8], what: &str) {
        if self.len == expected.len() && self.digest == digest(expected) {
            return;
        }
        let detail = self
            .difference
            .clone()
            .unwrap_or_else(|| format!("got {} bytes, expected {}", self.len, expected.len()));
        let detail = detail.strip_prefix("bytes: ").unwrap_or(&detail).to_owned();
        panic!("{what}: {detail}");
    }
}

/// FNV-1a, 64 bits: enough to tell payloads apart, not a cryptographic hash.
pub fn digest(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
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
