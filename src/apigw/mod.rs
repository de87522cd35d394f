//! API Gateway mapping: HTTP request → Lambda event (`event`), Lambda result → HTTP response and
//! every error a `url_path` route answers (`response`).
// Until the server wires these in, only the tests use them.
#![cfg_attr(not(test), allow(dead_code))]

pub mod event;
pub mod response;
