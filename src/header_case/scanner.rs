//! Finds each request head in the bytes a client connection sends, and the header names in it as the
//! client spelt them: actix-http lower-cases every name as it parses, and API Gateway's REST API keeps
//! the client's spelling.
//!
//! The scanner follows HTTP/1.1 framing (`Content-Length`, `chunked`) from one head to the next, so a
//! keep-alive connection and pipelined requests yield one head each, in order. Anything it cannot
//! follow (a malformed head, an upgrade, a head too large) makes it *lost* for good: it yields no
//! more heads, and those requests fall back to actix's names. It never guesses.

/// The largest head (or chunked trailer section) the scanner keeps while waiting for its end.
const MAX_HEAD: usize = 64 * 1024;
/// The most header lines a head may have (actix-http refuses more).
const MAX_HEADERS: usize = 128;
/// The longest chunk-size line.
const MAX_CHUNK_LINE: usize = 1024;

/// Where in the byte stream the scanner is.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Place {
    /// Reading a request head.
    Head,
    /// Skipping this many bytes of a `Content-Length` body.
    Body(u64),
    /// Reading a chunk-size line.
    ChunkSize,
    /// Skipping this many bytes of chunk data and its CRLF.
    ChunkData(u64),
    /// Reading the trailer section after the last chunk.
    Trailers,
    /// Lost track: no more heads from this connection.
    Lost,
}

/// The header names of one request head, in the order sent.
pub type RawNames = Vec<String>;

/// Follows one connection's request stream; feed it every byte read, in order.
#[derive(Debug)]
pub struct HeadScanner {
    place: Place,
    /// Bytes of an unfinished head, chunk-size line or trailer section.
    pending: Vec<u8>,
}

impl Default for HeadScanner {
    fn default() -> Self {
        HeadScanner { place: Place::Head, pending: Vec::new() }
    }
}

impl HeadScanner {
    /// Whether the scanner has lost track of the stream.
    #[cfg(test)]
    pub fn is_lost(&self) -> bool {
        self.place == Place::Lost
    }

    /// Takes the next bytes of the stream; returns the heads completed by them, in order.
    pub fn feed(&mut self, mut input: &[u8]) -> Vec<RawNames> {
        let mut heads = Vec::new();
        while !input.is_empty() {
            match self.place {
                Place::Lost => break,
                Place::Body(left) | Place::ChunkData(left) => {
                    let skip = left.min(input.len() as u64);
                    input = &input[skip as usize..];
                    let left = left - skip;
                    self.place = match (&self.place, left) {
                        (Place::Body(_), 0) => Place::Head,
                        (Place::Body(_), left) => Place::Body(left),
                        (_, 0) => Place::ChunkSize,
                        (_, left) => Place::ChunkData(left),
                    };
                }
                Place::Head | Place::ChunkSize | Place::Trailers => {
                    // Take bytes up to the end of what this place may need, then try to parse.
                    let (used, done) = self.parse_pending(input, &mut heads);
                    input = &input[used..];
                    if !done && input.is_empty() {
                        break;
                    }
                }
            }
        }
        heads
    }

    /// Appends `input` to the pending bytes and parses them. Returns how many bytes of `input` the
    /// current place used (the rest belongs to the next place) and whether the place is complete.
    fn parse_pending(&mut self, input: &[u8], heads: &mut Vec<RawNames>) -> (usize, bool) {
        let before = self.pending.len();
        self.pending.extend_from_slice(input);
        let outcome = match self.place {
            Place::Head => self.parse_head(heads),
            Place::ChunkSize => self.parse_chunk_size(),
            _ => self.parse_trailers(),
        };
        match outcome {
            Step::Done(consumed) => {
                self.pending.clear();
                (consumed.saturating_sub(before), true)
            }
            Step::Partial(limit) => {
                if self.pending.len() > limit {
                    self.lose();
                }
                (input.len(), false)
            }
            Step::Lost => {
                self.lose();
                (input.len(), false)
            }
        }
    }

    fn lose(&mut self) {
        self.place = Place::Lost;
        self.pending = Vec::new();
    }

    fn parse_head(&mut self, heads: &mut Vec<RawNames>) -> Step {
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut request = httparse::Request::new(&mut headers);
        let consumed = match request.parse(&self.pending) {
            Ok(httparse::Status::Complete(consumed)) => consumed,
            Ok(httparse::Status::Partial) => return Step::Partial(MAX_HEAD),
            Err(_) => return Step::Lost,
        };
        let Some(next) = framing(&request) else {
            return Step::Lost;
        };
        heads.push(request.headers.iter().map(|h| h.name.to_owned()).collect());
        self.place = next;
        Step::Done(consumed)
    }

    fn parse_chunk_size(&mut self) -> Step {
        match httparse::parse_chunk_size(&self.pending) {
            Ok(httparse::Status::Complete((consumed, 0))) => {
                self.place = Place::Trailers;
                Step::Done(consumed)
            }
            Ok(httparse::Status::Complete((consumed, size))) => match size.checked_add(2) {
                Some(with_crlf) => {
                    self.place = Place::ChunkData(with_crlf);
                    Step::Done(consumed)
                }
                None => Step::Lost,
            },
            Ok(httparse::Status::Partial) => Step::Partial(MAX_CHUNK_LINE),
            Err(_) => Step::Lost,
        }
    }

    /// The trailer section ends at an empty line: right away (`\r\n`) or after trailer fields.
    fn parse_trailers(&mut self) -> Step {
        let end = if self.pending.starts_with(b"\r\n") {
            Some(2)
        } else {
            self.pending.windows(4).position(|w| w == b"\r\n\r\n").map(|at| at + 4)
        };
        match end {
            Some(consumed) => {
                self.place = Place::Head;
                Step::Done(consumed)
            }
            None => Step::Partial(MAX_HEAD),
        }
    }
}

/// What parsing the pending bytes came to.
enum Step {
    /// The place is complete after this many pending bytes.
    Done(usize),
    /// More bytes needed; lost beyond this many.
    Partial(usize),
    Lost,
}

/// Where the stream goes after this head: its body, by HTTP/1.1's rules, then the next head. `None`
/// for what the scanner does not follow: an upgrade or CONNECT (the bytes after it are not HTTP),
/// a `Transfer-Encoding` other than a final `chunked`, or an unreadable or conflicting length
/// (`framing::content_length`).
fn framing(request: &httparse::Request) -> Option<Place> {
    if request.method.is_some_and(|m| m.eq_ignore_ascii_case("CONNECT")) {
        return None;
    }
    let length = crate::framing::content_length(request.headers).ok()?;
    let mut chunked = false;
    for header in request.headers.iter() {
        let value = std::str::from_utf8(header.value).ok()?.trim();
        if header.name.eq_ignore_ascii_case("upgrade") {
            return None;
        } else if header.name.eq_ignore_ascii_case("transfer-encoding") {
            let last = value.rsplit(',').next().unwrap_or("").trim();
            if !last.eq_ignore_ascii_case("chunked") {
                return None;
            }
            chunked = true;
        }
    }
    Some(match (chunked, length) {
        (true, _) => Place::ChunkSize,
        (false, Some(0) | None) => Place::Head,
        (false, Some(length)) => Place::Body(length),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(list: &[&str]) -> RawNames {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    /// Feeds `stream` in pieces cut at `cuts` (byte offsets), and collects every head.
    fn scan(stream: &[u8], cuts: &[usize]) -> (Vec<RawNames>, bool) {
        let mut scanner = HeadScanner::default();
        let mut heads = Vec::new();
        let mut from = 0;
        for &cut in cuts.iter().chain([&stream.len()]) {
            heads.extend(scanner.feed(&stream[from..cut]));
            from = cut;
        }
        (heads, scanner.is_lost())
    }

    const GET: &[u8] = b"GET /a HTTP/1.1\r\nHost: x\r\nX-GitHub-Event: push\r\n\r\n";
    const POST: &[u8] = b"POST /b HTTP/1.1\r\ncontent-type: text/plain\r\nContent-Length: 5\r\n\r\nhello";
    const CHUNKED: &[u8] = b"POST /c HTTP/1.1\r\nTransfer-Encoding: chunked\r\nX-MiXeD: 1\r\n\r\n\
        5\r\nhello\r\n3;ext=1\r\n\r\n\r\n0\r\n\r\n";
    const TRAILERS: &[u8] = b"POST /t HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n\
        1\r\nx\r\n0\r\nX-Trailer: 1\r\n\r\n";

    fn joined(parts: &[&[u8]]) -> Vec<u8> {
        parts.concat()
    }

    #[test]
    fn heads_in_order_however_the_bytes_arrive() {
        let get = names(&["Host", "X-GitHub-Event"]);
        let post = names(&["content-type", "Content-Length"]);
        let chunked = names(&["Transfer-Encoding", "X-MiXeD"]);
        let trailers = names(&["Transfer-Encoding"]);
        let pipelined = joined(&[GET, POST, CHUNKED, TRAILERS, GET]);
        let want = vec![get.clone(), post.clone(), chunked.clone(), trailers.clone(), get.clone()];
        let every_byte: Vec<usize> = (1..pipelined.len()).collect();
        type Case<'a> = (&'a str, &'a [u8], Vec<usize>, Vec<RawNames>);
        let cases: Vec<Case> = vec![
            ("one head, one read", GET, vec![], vec![get.clone()]),
            ("a head split inside a name", GET, vec![20], vec![get.clone()]),
            ("a head split in its final CRLF", GET, vec![GET.len() - 1], vec![get.clone()]),
            ("a body split from its head", POST, vec![POST.len() - 5], vec![post.clone()]),
            ("chunked, split in a chunk", CHUNKED, vec![70], vec![chunked.clone()]),
            ("trailers", TRAILERS, vec![], vec![trailers.clone()]),
            ("pipelined in one read", &pipelined, vec![], want.clone()),
            ("pipelined, a byte a read", &pipelined, every_byte, want.clone()),
        ];
        for (what, stream, cuts, want) in cases {
            let (got, lost) = scan(stream, &cuts);
            assert_eq!(got, want, "{what}");
            assert!(!lost, "{what}");
        }
    }

    #[test]
    fn a_body_that_looks_like_a_head_is_skipped() {
        let body = b"GET /evil HTTP/1.1\r\nX-Evil: 1\r\n\r\n";
        let head = format!("POST /p HTTP/1.1\r\nContent-Length: {}\r\n\r\n", body.len());
        let stream = joined(&[head.as_bytes(), body, GET]);
        let (got, lost) = scan(&stream, &[10, head.len() + 3]);
        assert_eq!(got, [names(&["Content-Length"]), names(&["Host", "X-GitHub-Event"])]);
        assert!(!lost);
    }

    #[test]
    fn what_it_cannot_follow_loses_it_for_good() {
        let cases: [(&str, &[u8]); 6] = [
            ("a malformed head", b"GET /a HTTP/1.1\r\nBad Name: x\r\n\r\n"),
            ("a bad content length", b"POST / HTTP/1.1\r\nContent-Length: +5\r\n\r\nhello"),
            ("conflicting lengths", b"POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n"),
            ("an upgrade", b"GET / HTTP/1.1\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n"),
            ("an unknown transfer coding", b"POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n"),
            ("a bad chunk size", b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"),
        ];
        for (what, stream) in cases {
            let stream = joined(&[GET, stream, GET]);
            let (got, lost) = scan(&stream, &[]);
            assert!(lost, "{what}");
            assert_eq!(got.first(), Some(&names(&["Host", "X-GitHub-Event"])), "{what}");
            assert!(got.len() <= 2, "{what}: nothing after the point it lost track: {got:?}");
        }
        let huge = [b"GET / HTTP/1.1\r\nX: ".as_slice(), &vec![b'a'; MAX_HEAD + 10]].concat();
        assert!(scan(&huge, &[100]).1, "a head without end");
    }
}
