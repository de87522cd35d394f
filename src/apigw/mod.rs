//! API Gateway mapping: HTTP request → Lambda event, Lambda result → HTTP response.
