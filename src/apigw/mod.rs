//! API Gateway mapping: HTTP request → Lambda event (`event`), Lambda result → HTTP response and
//! every error a `url_path` route answers (`response`).

pub mod event;
pub mod response;
