//! HTTP/1.1 framing from a head parsed by `httparse`, for the code that reads heads itself rather
//! than through actix-web: the header-case scanner and the bundled runtime's socket.

/// The body length `headers` declare: None without a `Content-Length`; an error for one that is not
/// all digits, or for two that disagree.
pub fn content_length(headers: &[httparse::Header<'_>]) -> Result<Option<u64>, &'static str> {
    const NOT_A_NUMBER: &str = "a Content-Length that is not a number";
    let mut length: Option<u64> = None;
    for header in headers.iter().filter(|h| h.name.eq_ignore_ascii_case("content-length")) {
        let value = std::str::from_utf8(header.value).map_err(|_| NOT_A_NUMBER)?.trim();
        if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
            return Err(NOT_A_NUMBER);
        }
        let parsed: u64 = value.parse().map_err(|_| NOT_A_NUMBER)?;
        if length.is_some_and(|seen| seen != parsed) {
            return Err("conflicting Content-Length headers");
        }
        length = Some(parsed);
    }
    Ok(length)
}

#[cfg(test)]
mod tests {
    use super::*;

    type Length = Result<Option<u64>, &'static str>;

    #[test]
    fn lengths_are_digits_and_agree() {
        let header =
            |value: &'static str| httparse::Header { name: "Content-Length", value: value.as_bytes() };
        let other = httparse::Header { name: "X-Other", value: b"12" };
        let cases: Vec<(Vec<httparse::Header<'_>>, Length)> = vec![
            (vec![], Ok(None)),
            (vec![other], Ok(None)),
            (vec![header("12")], Ok(Some(12))),
            (vec![header(" 12 ")], Ok(Some(12))),
            (vec![header("12"), header("12")], Ok(Some(12))),
            (vec![header("12"), header("13")], Err("conflicting Content-Length headers")),
            (vec![header("")], Err("a Content-Length that is not a number")),
            (vec![header("+12")], Err("a Content-Length that is not a number")),
            (vec![header("-1")], Err("a Content-Length that is not a number")),
            (vec![header("1e3")], Err("a Content-Length that is not a number")),
            (vec![header("99999999999999999999999")], Err("a Content-Length that is not a number")),
        ];
        for (headers, expected) in cases {
            assert_eq!(content_length(&headers), expected, "{headers:?}");
        }
    }
}
