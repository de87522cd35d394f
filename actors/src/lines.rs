//! Splitting a worker's output into log lines with a bounded buffer: a line longer than
//! [`MAX_LINE`] keeps its first 256 KB (CloudWatch's limit for one log event) and ends with a mark
//! saying how much was dropped; the rest is skipped up to the newline, never held.

/// The most bytes of one line that are kept: CloudWatch's event limit.
pub const MAX_LINE: usize = 256 * 1024;

/// Buffers larger than this are freed after their line rather than kept for the next.
const KEEP_CAPACITY: usize = 64 * 1024;

/// What a cut line ends with: `… [truncated N bytes]`.
pub fn truncation_mark(dropped: usize) -> String {
    format!("… [truncated {dropped} bytes]")
}

/// Turns chunks of output into lines, each at most `limit` bytes plus the mark.
pub struct Lines {
    limit: usize,
    line: Vec<u8>,
    dropped: usize,
}

impl Lines {
    pub fn new(limit: usize) -> Self {
        Self { limit, line: Vec::new(), dropped: 0 }
    }

    /// Feeds one chunk; `emit` gets every line it completes (without the newline) and whether it was cut.
    pub fn feed(&mut self, mut chunk: &[u8], emit: &mut impl FnMut(&str, bool)) {
        while let Some(end) = chunk.iter().position(|byte| *byte == b'\n') {
            self.take(&chunk[..end]);
            self.flush(emit);
            chunk = &chunk[end + 1..];
        }
        self.take(chunk);
    }

    /// End of output: the last line, if it had no newline.
    pub fn finish(&mut self, emit: &mut impl FnMut(&str, bool)) {
        if !self.line.is_empty() || self.dropped > 0 {
            self.flush(emit);
        }
    }

    fn take(&mut self, part: &[u8]) {
        let room = self.limit - self.line.len();
        let kept = part.len().min(room);
        let needed = self.line.len() + kept;
        if needed > self.line.capacity() {
            // Grow as a Vec does, but never past the limit.
            let target = needed.max(2 * self.line.capacity()).min(self.limit);
            self.line.reserve_exact(target - self.line.len());
        }
        self.line.extend_from_slice(&part[..kept]);
        self.dropped += part.len() - kept;
    }

    fn flush(&mut self, emit: &mut impl FnMut(&str, bool)) {
        let cut = self.dropped > 0;
        if cut {
            // Do not end on half a character.
            if let Err(err) = std::str::from_utf8(&self.line) {
                if err.error_len().is_none() {
                    self.dropped += self.line.len() - err.valid_up_to();
                    self.line.truncate(err.valid_up_to());
                }
            }
        }
        let text = String::from_utf8_lossy(&self.line);
        if cut {
            emit(&format!("{text}{}", truncation_mark(self.dropped)), true);
        } else {
            emit(text.trim_end_matches(['\n', '\r']), false);
        }
        self.line.clear();
        self.dropped = 0;
        if self.line.capacity() > KEEP_CAPACITY {
            self.line = Vec::new();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(limit: usize, chunks: &[&[u8]]) -> Vec<(String, bool)> {
        let mut lines = Lines::new(limit);
        let mut out = Vec::new();
        let mut emit = |line: &str, cut: bool| out.push((line.to_string(), cut));
        for chunk in chunks {
            lines.feed(chunk, &mut emit);
        }
        lines.finish(&mut emit);
        out
    }

    /// What, the limit, the chunks fed, the lines expected (text, whether cut).
    type Case<'a> = (&'a str, usize, Vec<&'a [u8]>, Vec<(&'a str, bool)>);

    #[test]
    fn lines_are_split_capped_and_marked() {
        let cases: Vec<Case> = vec![
            ("plain lines", 10, vec![b"one\ntwo\n"], vec![("one", false), ("two", false)]),
            ("across chunks", 10, vec![b"on", b"e\ntw", b"o"], vec![("one", false), ("two", false)]),
            ("crlf", 10, vec![b"dos\r\n"], vec![("dos", false)]),
            ("empty line", 10, vec![b"\n"], vec![("", false)]),
            ("exactly the limit", 3, vec![b"abc\n"], vec![("abc", false)]),
            ("one over", 3, vec![b"abcd\nok\n"], vec![("abc… [truncated 1 bytes]", true), ("ok", false)]),
            (
                "long, in pieces",
                4,
                vec![b"abcdef", b"ghij", b"kl\nnext"],
                vec![("abcd… [truncated 8 bytes]", true), ("next", false)],
            ),
            ("cut without newline", 2, vec![b"abcd"], vec![("ab… [truncated 2 bytes]", true)]),
            (
                "never half a character",
                4,
                vec!["abcé…\n".as_bytes()],
                vec![("abc… [truncated 5 bytes]", true)],
            ),
        ];
        for (what, limit, chunks, expected) in cases {
            let expected: Vec<(String, bool)> =
                expected.into_iter().map(|(l, c)| (l.to_string(), c)).collect();
            assert_eq!(split(limit, &chunks), expected, "{what}");
        }
    }

    #[test]
    fn a_huge_line_never_grows_the_buffer_past_the_limit() {
        let mut lines = Lines::new(MAX_LINE);
        let chunk = vec![b'x'; 64 * 1024];
        let mut emitted = Vec::new();
        for _ in 0..100 {
            lines.feed(&chunk, &mut |line: &str, _| emitted.push(line.len()));
            assert!(lines.line.capacity() <= MAX_LINE);
        }
        lines.feed(b"\n", &mut |line: &str, _| emitted.push(line.len()));
        let dropped = 100 * 64 * 1024 - MAX_LINE;
        assert_eq!(emitted, [MAX_LINE + truncation_mark(dropped).len()]);
        assert_eq!(lines.line.capacity(), 0, "the big buffer is given back");
    }
}
