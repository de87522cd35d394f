//! The Lambda API's errors, in AWS's shape: the type in `x-amzn-ErrorType` (boto3 reads it first)
//! and in the body, with the status code botocore's service model gives each type.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use serde_json::json;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiError {
    /// 400: a value out of range, a combination AWS refuses, a body that is not the call's shape.
    #[error("{0}")]
    InvalidParameterValue(String),
    /// 404: no such function (or qualifier). The message names the ARN, as AWS's does.
    #[error("Function not found: {0}")]
    ResourceNotFound(String),
    /// 404: GetProvisionedConcurrencyConfig on a function without one.
    #[error("No Provisioned Concurrency Config found for this function")]
    ProvisionedConcurrencyConfigNotFound,
    /// 503: the server is shutting down.
    #[error("smyth is shutting down")]
    Service,
}

impl ApiError {
    fn error_type(&self) -> &'static str {
        match self {
            ApiError::InvalidParameterValue(_) => "InvalidParameterValueException",
            ApiError::ResourceNotFound(_) => "ResourceNotFoundException",
            ApiError::ProvisionedConcurrencyConfigNotFound => "ProvisionedConcurrencyConfigNotFoundException",
            ApiError::Service => "ServiceException",
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::InvalidParameterValue(_) => StatusCode::BAD_REQUEST,
            ApiError::ResourceNotFound(_) | ApiError::ProvisionedConcurrencyConfigNotFound => {
                StatusCode::NOT_FOUND
            }
            ApiError::Service => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    fn error_response(&self) -> HttpResponse {
        // The service model spells the member `Message` for these two and `message` for the rest.
        let key = match self {
            ApiError::ResourceNotFound(_) | ApiError::Service => "Message",
            _ => "message",
        };
        let kind = if matches!(self, ApiError::Service) { "Service" } else { "User" };
        HttpResponse::build(self.status_code())
            .insert_header(("x-amzn-ErrorType", self.error_type()))
            .insert_header(("x-amzn-RequestId", uuid::Uuid::new_v4().to_string()))
            .json(json!({"Type": kind, key: self.to_string()}))
    }
}
