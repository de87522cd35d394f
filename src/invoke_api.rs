//! The Lambda Invoke API (`POST /2015-03-31/functions/{name}/invocations`), as boto3 and the AWS CLI
//! call it.

use actix_web::web;

pub fn configure(_cfg: &mut web::ServiceConfig) {}
